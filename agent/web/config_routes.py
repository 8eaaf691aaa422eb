"""The page's configuration editor: load, check (loader's messages + diff), save and reload."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web import i18n
from agent.web.configedit import CheckResult, ConfigEditor, ConflictError
from agent.web.sessions import Session
from config.messages import problem_text

if TYPE_CHECKING:
    from agent.web.app import WebPage

log = logging.getLogger("headframe.web")

Reload = Callable[[], Awaitable[bool]]


def explained(result: CheckResult, lang: i18n.Lang) -> list[str]:
    """The loader's problems in the technician's language (``problems`` keeps them as the loader
    wrote them, in English, as logs and the reload-rejected record have them)."""
    return [problem_text(p, lang) for p in result.details] or result.problems


class ConfigRoutes:
    """``GET /api/config``, ``POST /api/config/check``, ``POST /api/config/save`` (CSRF on both posts)."""

    def __init__(self, editor: ConfigEditor, reload: Reload) -> None:
        self.editor, self.reload = editor, reload
        self.page: WebPage | None = None

    def add_routes(self, app: web.Application, page: WebPage) -> None:
        self.page = page
        app.add_routes(
            [
                web.get("/api/config", self.get),
                web.post("/api/config/check", self.check),
                web.post("/api/config/save", self.save),
            ]
        )

    async def _text(self, request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        assert self.page is not None
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return None, self.page.refuse(request, 400, "bad_request", detail="body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return None, self.page.refuse(request, 400, "bad_request", detail='expected {"text": "<yaml>"}')
        return body, None

    async def get(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=False)
        if not isinstance(session, Session):
            return session
        text, digest = self.editor.current()
        return web.json_response({"text": text, "hash": digest, "path": str(self.editor.path)})

    async def check(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return session
        body, refusal = await self._text(request)
        if refusal is not None or body is None:
            return refusal or web.Response(status=400)
        result = self.editor.check(body["text"])
        return web.json_response(
            {
                "ok": result.ok,
                "problems": result.problems,
                "explained": explained(result, self.page.lang(request)),
                "diff": result.diff,
                "restart_needed": result.restart_needed,
            }
        )

    async def save(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return session
        body, refusal = await self._text(request)
        if refusal is not None or body is None:
            return refusal or web.Response(status=400)
        return await self.apply(request, session, body["text"], str(body.get("hash", "")))

    async def apply(self, request: web.Request, session: Session, text: str, base_hash: str) -> web.Response:
        """Validate, write atomically and reload — the one save path (the device form uses it too)."""
        assert self.page is not None
        lang = self.page.lang(request)
        try:
            result = await self.editor.save(text, base_hash)
        except ConflictError as exc:
            return web.json_response({"ok": False, "message": i18n.text("config_conflict", lang), "detail": str(exc)}, status=409)
        if not result.ok:
            return web.json_response(
                {
                    "ok": False,
                    "problems": result.problems,
                    "explained": explained(result, lang),
                    "message": i18n.text("config_invalid", lang),
                },
                status=422,
            )
        if not result.diff:
            return web.json_response({"ok": True, "saved": False, "message": i18n.text("config_unchanged", lang)})
        log.info("web: %s@%s saved %s; reloading", session.user, session.address, self.editor.path)
        reloaded = await self.reload()
        _, digest = self.editor.current()
        message = i18n.text("config_saved" if reloaded else "config_saved_not_applied", lang)
        if reloaded and result.restart_needed:
            message += " " + i18n.text("config_restart_needed", lang, sections=", ".join(result.restart_needed))
        return web.json_response(
            {
                "ok": reloaded,
                "saved": True,
                "reloaded": reloaded,
                "restart_needed": result.restart_needed,
                "hash": digest,
                "diff": result.diff,
                "message": message,
            }
        )
