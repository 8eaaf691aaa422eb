"""The vision producer: one worker process per camera, supervised from the agent's loop.

A worker decodes and analyses; records come back over a bounded queue (telemetry is dropped
when it is full, never alarms). A worker that dies or stops sending heartbeats is killed and
restarted with back-off; its state is in health. Polling never waits on video.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import queue
import time
from typing import Any

from buffer.record import Attachment, Kind, Record
from buffer.sink import RecordSink
from config.schema import Settings
from config.vision import CameraSettings, ShaftSettings

log = logging.getLogger("headframe.vision")
_CTX = mp.get_context("spawn")  # no fork of a threaded asyncio process


def worker_main(cam_json: str, shafts_json: list[str], out: Any, heartbeat: Any) -> None:
    """Runs in the child: source → pipeline → queue. Exits non-zero on a fatal error."""
    import json

    from vision.detector import ModelError
    from vision.pipeline import CameraPipeline
    from vision.source import LatestFrameSource

    cam = CameraSettings.model_validate(json.loads(cam_json))
    shafts = [ShaftSettings.model_validate(json.loads(s)) for s in shafts_json]

    def send(kind: Kind, payload: dict[str, Any], attachments: tuple[Attachment, ...], ts: float) -> None:
        item = (kind.value, payload, [(a.name, a.content_type, a.data) for a in attachments], ts)
        try:
            out.put(item, block=kind is not Kind.TELEMETRY, timeout=5)
        except queue.Full:
            pass

    try:
        pipeline = CameraPipeline(cam, send, shafts)
    except (ModelError, ValueError) as exc:
        send(Kind.EVENT, {"event": "camera_error", "error": str(exc)}, (), time.time())
        raise SystemExit(3) from None
    source = LatestFrameSource(cam.url, cam.reconnect_max).start()
    period = 1.0 / cam.fps
    lost_since: float | None = None
    while True:
        heartbeat.value = time.time()
        started = time.monotonic()
        item = source.latest()
        if item is None:
            if source.state == "lost":
                lost_since = lost_since or time.time()
                if pipeline.tamper and time.time() - lost_since > 3 * period + 2:
                    pipeline.tamper.signal(True, source.error or "no frames")
            time.sleep(period / 2)
            continue
        frame, ts = item
        if lost_since is not None and pipeline.tamper:
            pipeline.tamper.signal(False)
        lost_since = None
        try:
            pipeline.process(frame, ts)
        except ValueError as exc:  # a corrupt frame: skip it, say so, keep going
            log.warning("camera %s: %s", cam.id, exc)
        time.sleep(max(0.0, period - (time.monotonic() - started)))


class CameraWorker:
    """Supervises one camera's process."""

    def __init__(self, cam: CameraSettings, shafts: list[ShaftSettings], sink: RecordSink) -> None:
        self.cam, self.shafts, self.sink = cam, shafts, sink
        self.queue: Any = _CTX.Queue(maxsize=256)
        self.heartbeat: Any = _CTX.Value("d", 0.0)
        self.proc: Any = None
        self.state = "starting"
        self.restarts = 0
        self.last_error: str | None = None
        self.next_start = 0.0
        self.started_at = 0.0
        self.tamper: list[str] = []
        self.fps = 0.0

    def start(self) -> None:
        shafts = [s.model_dump_json() for s in self.shafts]
        self.heartbeat.value = time.time()
        self.proc = _CTX.Process(target=worker_main, args=(self.cam.model_dump_json(), shafts, self.queue, self.heartbeat),
                                 daemon=True, name=f"camera-{self.cam.id}")
        self.proc.start()
        self.started_at = time.time()
        self.state = "running"

    def drain(self, limit: int = 200) -> int:
        n = 0
        while n < limit:
            try:
                kind, payload, atts, ts = self.queue.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                break
            n += 1
            if kind == "telemetry":
                self.tamper = payload.get("tamper", self.tamper)
                self.fps = payload.get("fps", self.fps)
            if payload.get("event") == "camera_error":
                self.last_error = payload["error"]
            self.sink.emit(Record(self.cam.id, Kind(kind), payload, ts=ts,
                                  attachments=tuple(Attachment(*a) for a in atts)))
        return n

    def supervise(self) -> None:
        """Restart a dead or hung worker with back-off (2 s, 4 s, … capped at 60 s)."""
        now = time.time()
        if self.proc is None:
            if now >= self.next_start:
                self.start()
            return
        dead = not self.proc.is_alive()
        hung = now - self.heartbeat.value > self.cam.hang_timeout
        if not (dead or hung):
            return
        why = f"worker exited with code {self.proc.exitcode}" if dead else f"no heartbeat for {self.cam.hang_timeout:.0f}s"
        if hung:
            self.proc.kill()
        self.proc.join(2)
        self.drain()
        self.last_error = self.last_error if dead and self.last_error else why
        self.restarts += 1
        delay = min(60.0, 2.0 ** min(self.restarts, 6))
        self.next_start = now + delay
        self.state = "restarting"
        self.proc = None
        log.error("camera %s: %s; restart %d in %.0f s", self.cam.id, why, self.restarts, delay)
        self.sink.emit(Record(self.cam.id, Kind.EVENT, {"event": "camera_worker_restart", "reason": why,
                                                         "restarts": self.restarts, "error": self.last_error}))

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(3)
            if self.proc.is_alive():
                self.proc.kill()
        self.drain()
        self.state = "stopped"

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "fps": self.fps, "restarts": self.restarts, "last_error": self.last_error,
                "tamper": self.tamper}


class Vision:
    name = "vision"

    def __init__(self, settings: Any, sink: RecordSink) -> None:
        self.workers = [CameraWorker(c, list(settings.shafts), sink) for c in settings.cameras if c.enabled]
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for w in self.workers:
            w.start()
        self._task = asyncio.create_task(self._loop(), name="vision-supervisor")

    async def _loop(self) -> None:
        while True:
            for w in self.workers:
                w.drain()
                w.supervise()
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in self.workers))

    def health(self) -> dict[str, Any]:
        return {"cameras": {w.cam.id: w.health() for w in self.workers}}


def build(settings: Settings, sink: RecordSink) -> Vision | None:
    if not any(c.enabled for c in settings.cameras):
        return None
    return Vision(settings, sink)
