"""The camera view: live snapshot, lines and zones to drag, replay with the edited line, save.

``GET  /api/cameras``                    cameras in the config file, their shapes and counts
``GET  /api/cameras/{id}/snapshot``      the worker's last frame (JPEG as a data: URL) or why not
``POST /api/cameras/{id}/replay``        recount the last minutes' tracks with the edited lines
``POST /api/cameras/{id}/save``          write the edited points into the file, validate, reload

Nothing here touches the analysis: the snapshot and the track trail come from the worker only
when asked (``vision.peek``), the recount runs on a thread, one replay at a time. A camera that
is offline still answers with the last picture it had (or the last one the page was sent), so
the technician can go on editing, with a message saying the picture is old and why.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web import i18n
from agent.web.camera_counts import CameraCounts
from agent.web.camera_geometry import Shape, apply_edits, check_edits, shapes_of
from agent.web.configedit import ConflictError
from agent.web.sessions import Session
from config import ConfigError, load_settings_text
from config.schema import Settings
from config.vision import LineSettings

if TYPE_CHECKING:
    from agent.web.app import WebPage
    from agent.web.config_routes import ConfigRoutes
    from vision.runtime import CameraWorker

log = logging.getLogger("headframe.web")

Producers = Callable[[], Sequence[Any]]
#: how long the page waits for a worker's answer (between two of its frames)
ASK_TIMEOUT = 5.0


class CameraRoutes:
    def __init__(self, producers: Producers, counts: CameraCounts) -> None:
        self.producers, self.counts = producers, counts
        self.page: WebPage | None = None
        self.snapshots: dict[str, tuple[bytes, float]] = {}  # the last picture of each camera, for when it is offline
        self._replay = asyncio.Lock()
        self._asking: set[str] = set()  # cameras with a snapshot request in flight (one thread each at most)
        self._online: dict[str, bool] = {}

    def add_routes(self, app: web.Application, page: WebPage) -> None:
        self.page = page
        app.add_routes(
            [
                web.get("/api/cameras", self.list),
                web.get("/api/cameras/{camera}/snapshot", self.snapshot),
                web.post("/api/cameras/{camera}/replay", self.replay),
                web.post("/api/cameras/{camera}/save", self.save),
            ]
        )

    # ----- helpers -------------------------------------------------------------------------

    @property
    def config(self) -> ConfigRoutes:
        assert self.page is not None and self.page.config is not None
        return self.page.config

    def _file(self) -> tuple[str, str, Settings | None, list[str]]:
        """The config file as on disk: text, hash, settings (None when it does not load) and problems."""
        editor = self.config.editor
        text, digest = editor.current()
        try:
            return text, digest, load_settings_text(text, file=str(editor.path), base_dir=editor.path.parent), []
        except ConfigError as exc:
            return text, digest, None, [str(p) for p in exc.problems]

    def _worker(self, camera: str) -> CameraWorker | None:
        for producer in self.producers():
            find = getattr(producer, "worker", None)
            if getattr(producer, "name", None) == "vision" and callable(find):
                return find(camera)
        return None

    def _answer(self, request: web.Request, status: int, key: str, **args: object) -> web.Response:
        assert self.page is not None
        return self.page.refuse(request, status, key, **args)

    async def _guarded_body(self, request: web.Request) -> tuple[Session | None, dict[str, Any] | web.Response]:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return None, session
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return None, self._answer(request, 400, "bad_request", detail="body is not JSON")
        if not isinstance(body, dict):
            return None, self._answer(request, 400, "bad_request", detail="expected a JSON object")
        return session, body

    async def _edits(self, request: web.Request, body: dict[str, Any]) -> tuple[list[Shape], list[Shape], web.Response | None]:
        """The checked shapes of the camera named in the URL and its shapes as in the file, or the
        refusal naming what is wrong."""
        lang = self.page.lang(request) if self.page else "en"
        camera = request.match_info["camera"]
        _, _, settings, problems = await asyncio.to_thread(self._file)
        if settings is None:
            return (
                [],
                [],
                web.json_response(
                    {"ok": False, "message": i18n.text("camera_config_invalid", lang), "problems": problems}, status=409
                ),
            )
        shapes = shapes_of(settings, camera)
        if shapes is None:
            return [], [], self._answer(request, 404, "camera_unknown", camera=camera)
        edits, problems = check_edits(shapes, body.get("shapes"), lang)
        if problems:
            return [], [], web.json_response({"ok": False, "message": problems[0], "problems": problems}, status=422)
        return edits, shapes, None

    # ----- routes --------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=False)
        if not isinstance(session, Session):
            return session
        _, digest, settings, problems = await asyncio.to_thread(self._file)
        if settings is None:
            lang = self.page.lang(request)
            return web.json_response({"ok": False, "message": i18n.text("camera_config_invalid", lang), "problems": problems})
        cameras = []
        for cam in settings.cameras:
            shapes = shapes_of(settings, cam.id) or []
            cameras.append(
                {
                    "id": cam.id,
                    "role": cam.role,
                    "enabled": cam.enabled,
                    "shapes": [s.doc() for s in shapes],
                    "counts": self.counts.of(cam.id),
                }
            )
        return web.json_response({"ok": True, "hash": digest, "cameras": cameras})

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=False)
        if not isinstance(session, Session):
            return session
        lang, camera = self.page.lang(request), request.match_info["camera"]
        worker = self._worker(camera)
        message, online, jpeg, ts = None, False, None, None
        if worker is None:
            _, _, settings, _ = self._file()
            if settings is None or shapes_of(settings, camera) is None:
                return self._answer(request, 404, "camera_unknown", camera=camera)
            message = i18n.text("camera_not_running", lang, camera=camera)
        elif worker.proc is None or not worker.proc.is_alive():
            why = worker.last_error or worker.state
            message = i18n.text("camera_restarting", lang, camera=camera, why=why)
        elif camera in self._asking:  # another tab asks right now: a hung worker must not take every thread
            online = self._online.get(camera, False)
        else:
            self._asking.add(camera)
            try:
                answer = await asyncio.to_thread(worker.peek.ask, "snapshot", ASK_TIMEOUT)
            except Exception as exc:  # PeekUnavailable; anything else must not break the page either
                message = i18n.text("camera_no_answer", lang, camera=camera, why=str(exc))
            else:
                online, jpeg, ts = bool(answer.get("online")), answer.get("jpeg"), answer.get("ts")
                self._online[camera] = online
                if not online and answer.get("error"):
                    message = i18n.text("camera_offline", lang, camera=camera, why=answer["error"])
            finally:
                self._asking.discard(camera)
        if jpeg and ts:
            self.snapshots[camera] = (jpeg, ts)
        elif camera in self.snapshots:
            jpeg, ts = self.snapshots[camera]
        if jpeg is None and message is None:
            message = i18n.text("camera_no_frame_yet", lang, camera=camera)
        if message and jpeg:
            message += " " + i18n.text("camera_last_picture", lang, age=round(time.time() - (ts or 0)))
        return web.json_response(
            {
                "ok": message is None,
                "online": online,
                "message": message,
                "ts": ts,
                "image": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode() if jpeg else None,
            }
        )

    async def replay(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        _, body = await self._guarded_body(request)
        if isinstance(body, web.Response):
            return body
        lang, camera = self.page.lang(request), request.match_info["camera"]
        edits, shapes, refusal = await self._edits(request, body)
        if refusal is not None:
            return refusal
        lines = [LineSettings(name=s.name, points=s.points) for s in edits if s.is_line]
        if not lines:
            return self._answer(request, 400, "bad_request", detail="no line to replay")
        worker = self._worker(camera)
        if worker is None or worker.proc is None or not worker.proc.is_alive():
            return self._answer(request, 409, "camera_not_running", camera=camera)
        if self._replay.locked():
            return self._answer(request, 409, "replay_busy")
        async with self._replay:
            try:
                answer = await asyncio.to_thread(worker.peek.ask, "trail", ASK_TIMEOUT * 2)
            except Exception as exc:
                return self._answer(request, 503, "camera_no_answer", camera=camera, why=str(exc))
            trail = answer.get("trail")
            if trail is None or not trail.frames:
                return self._answer(request, 409, "replay_nothing", camera=camera)
            from vision.trail import recount  # numpy and the counter: only once someone replays

            started = time.monotonic()
            saved = [LineSettings(name=s.name, points=s.points) for s in shapes if s.is_line]
            counts = await asyncio.to_thread(recount, trail, lines)
            before = await asyncio.to_thread(recount, trail, saved)
            spent = time.monotonic() - started
        log.info("web: replayed %d frames of %s in %.2f s", len(trail.frames), camera, spent)
        return web.json_response(
            {
                "ok": True,
                "seconds": round(trail.seconds, 1),
                "frames": len(trail.frames),
                "lines": counts,
                "saved_lines": before,
                "cpu_s": round(spent, 3),
                "message": i18n.text("replay_done", lang, seconds=round(trail.seconds), frames=len(trail.frames)),
            }
        )

    async def save(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session, body = await self._guarded_body(request)
        if isinstance(body, web.Response) or session is None:
            return body if isinstance(body, web.Response) else web.Response(status=400)
        lang = self.page.lang(request)
        edits, shapes, refusal = await self._edits(request, body)
        if refusal is not None:
            return refusal
        editor, reload = self.config.editor, self.config.reload
        text, _ = editor.current()
        before = {s.path: s.points for s in shapes}
        moved = [s for s in edits if s.points != before.get(s.path)]  # only what moved changes in the file
        try:
            new = apply_edits(text, moved)
        except KeyError as exc:
            return self._answer(request, 409, "camera_path_not_in_file", path=str(exc))
        try:
            result = await editor.save(new, str(body.get("hash", "")))
        except ConflictError as exc:
            return web.json_response({"ok": False, "message": i18n.text("config_conflict", lang), "detail": str(exc)}, status=409)
        if not result.ok:
            return web.json_response(
                {"ok": False, "problems": result.problems, "message": i18n.text("config_invalid", lang)}, status=422
            )
        if not result.diff:
            return web.json_response({"ok": True, "saved": False, "message": i18n.text("config_unchanged", lang)})
        log.info(
            "web: %s@%s saved the lines of camera %s; reloading", session.user, session.address, request.match_info["camera"]
        )
        reloaded = await reload()
        _, digest = editor.current()
        message = i18n.text("config_saved" if reloaded else "config_saved_not_applied", lang)
        return web.json_response(
            {"ok": reloaded, "saved": True, "reloaded": reloaded, "hash": digest, "diff": result.diff, "message": message}
        )
