"""The technician's page over HTTP(S): login, live state, alarm commands (aiohttp, on the agent's loop).

Security model (docs/web.md): one password (scrypt hash in a file), 256-bit session cookie
(HttpOnly, SameSite=Strict, Secure under TLS), a separate per-session CSRF token required on
every state-changing request, Origin checked, failed logins limited per address, strict
Content-Security-Policy (no inline script; the page builds its DOM with textContent only).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from agent.commanddesk import CommandDesk
from agent.web import i18n
from agent.web.config_routes import ConfigRoutes
from agent.web.live import LiveView
from agent.web.passwords import PasswordFileError, read_hash, verify_password
from agent.web.probe_routes import ProbeRoutes
from agent.web.sessions import LoginLimiter, Session, Sessions, csrf_ok
from config.web import WebSettings

log = logging.getLogger("headframe.web")

STATIC = Path(__file__).with_name("static")
COOKIE = "hf_session"
LANG_COOKIE = "hf_lang"
USER = "technician"
ALARM_OPS = ("ack", "handle", "close")
MAX_BODY = 64 * 1024

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

OpenAlarms = Callable[[], Awaitable[list[dict[str, Any]]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebPage:
    """Routes and their state; ``app()`` builds the aiohttp application."""

    def __init__(
        self,
        cfg: WebSettings,
        live: LiveView,
        desk: CommandDesk,
        open_alarms: OpenAlarms,
        gateway: str,
        config: ConfigRoutes | None = None,
        probe: ProbeRoutes | None = None,
    ) -> None:
        self.cfg, self.live, self.desk, self.open_alarms, self.gateway = cfg, live, desk, open_alarms, gateway
        self.config, self.probe = config, probe
        #: more route sets (each with ``add_routes(app, page)``), e.g. the device form
        self.extra: list[Any] = []
        self.sessions = Sessions(cfg.session_idle)
        self.limiter = LoginLimiter(cfg.max_failed_logins, cfg.lockout_window)

    # ----- plumbing -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers, self._origin], client_max_size=MAX_BODY)
        app.add_routes(
            [
                web.get("/login", self.login_page),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/", self.index),
                web.get("/api/state", self.api_state),
                web.post("/api/alarms/{op}", self.api_alarm),
                web.static("/static", STATIC, show_index=False, follow_symlinks=False),
            ]
        )
        if self.config is not None:
            self.config.add_routes(app, self)
        if self.probe is not None:
            self.probe.add_routes(app, self)
        for routes in self.extra:
            routes.add_routes(app, self)
        return app

    def guard(self, request: web.Request, *, csrf: bool) -> Session | web.Response:
        """The request's session, or the refusal to send (expired session, forged request)."""
        session = self.session(request)
        if session is None:
            return self._refuse(request, 401, "session_expired")
        if csrf and not csrf_ok(session, request.headers.get("X-CSRF-Token")):
            log.warning("web: request without a valid CSRF token from %s refused", request.remote)
            return self._refuse(request, 403, "forged_request")
        return session

    def refuse(self, request: web.Request, status: int, key: str, **args: object) -> web.Response:
        return self._refuse(request, status, key, **args)

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # not "no-referrer": with it Chromium sends "Origin: null" on the page's own form posts
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @web.middleware
    async def _origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A state-changing request whose Origin is another site is refused before anything else."""
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.host):
                return self._refuse(request, 403, "bad_origin")
        return await handler(request)

    def lang(self, request: web.Request) -> i18n.Lang:
        return i18n.choose(
            request.query.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("Accept-Language"),
            self.cfg.language,
        )

    def session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _refuse(self, request: web.Request, status: int, key: str, **args: object) -> web.Response:
        lang = self.lang(request)
        return web.json_response({"ok": False, "error": key, "message": i18n.text(key, lang, **args)}, status=status)

    def _remember_lang(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.query.get("lang") in i18n.LANGS:
            response.set_cookie(LANG_COOKIE, request.query["lang"], samesite="Strict", secure=self.cfg.tls is not None)

    # ----- login ----------------------------------------------------------------------------

    async def login_page(self, request: web.Request, message: str = "", status: int = 200) -> web.Response:
        lang = self.lang(request)
        if not message and request.query.get("expired"):
            message = i18n.text("session_expired", lang)
        esc = html.escape
        body = LOGIN_HTML.format(
            lang=lang,
            title=esc(i18n.text("title", lang)),
            gateway=esc(self.gateway),
            password=esc(i18n.text("password", lang)),
            login=esc(i18n.text("login", lang)),
            message=esc(message),
            other=("en" if lang == "zh" else "zh"),
            switch=esc(i18n.text("language", lang)),
        )
        response = web.Response(text=body, content_type="text/html", status=status)
        self._remember_lang(request, response)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        lang, address = self.lang(request), request.remote or "?"
        wait = self.limiter.blocked_for(address)
        if wait > 0:
            log.warning("web: login from %s refused: locked out for %.0f s", address, wait)
            return await self.login_page(request, i18n.text("locked_out", lang, seconds=int(wait) + 1), 429)
        form = await request.post()
        password = form.get("password")
        if not isinstance(password, str) or len(password) > 1024:
            return await self.login_page(request, i18n.text("wrong_password", lang), 401)
        assert self.cfg.password_file is not None  # validated: enabled requires it
        try:
            stored = read_hash(self.cfg.password_file)  # read each time: a new password works without a restart
        except PasswordFileError as exc:
            log.error("web: %s", exc)
            return await self.login_page(request, i18n.text("password_file", lang, detail=str(exc)), 500)
        ok = await asyncio.to_thread(verify_password, password, stored)
        if not ok:
            self.limiter.failed(address)
            log.warning("web: failed login from %s", address)
            return await self.login_page(request, i18n.text("wrong_password", lang), 401)
        self.limiter.succeeded(address)
        session = self.sessions.create(USER, address)
        log.info("web: %s logged in from %s", USER, address)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", secure=self.cfg.tls is not None, path="/")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self.session(request)
        form = await request.post()
        if session is not None and csrf_ok(session, str(form.get("csrf") or "")):
            self.sessions.drop(session.id)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        return response

    # ----- the page and its API -------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        session = self.session(request)
        if session is None:
            raise web.HTTPSeeOther("/login" + ("?expired=1" if COOKIE in request.cookies else ""))
        lang = self.lang(request)
        catalogue = json.dumps(i18n.catalogue(lang), ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
        esc = html.escape
        body = PAGE_HTML.format(
            lang=lang,
            title=esc(i18n.text("title", lang)),
            gateway=esc(self.gateway),
            csrf=esc(session.csrf),
            catalogue=catalogue,
            other=("en" if lang == "zh" else "zh"),
            switch=esc(i18n.text("language", lang)),
            logout=esc(i18n.text("logout", lang)),
        )
        response = web.Response(text=body, content_type="text/html")
        self._remember_lang(request, response)
        return response

    async def api_state(self, request: web.Request) -> web.StreamResponse:
        if self.session(request) is None:
            return self._refuse(request, 401, "session_expired")
        state = self.live.state()
        state["open_alarms"] = await self.open_alarms()
        return web.json_response(state)

    async def api_alarm(self, request: web.Request) -> web.StreamResponse:
        session = self.guard(request, csrf=True)
        if not isinstance(session, Session):
            return session
        op = request.match_info["op"]
        if op not in ALARM_OPS:
            return self._refuse(request, 404, "bad_request", detail=f"unknown operation (one of {', '.join(ALARM_OPS)})")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._refuse(request, 400, "bad_request", detail="body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return self._refuse(request, 400, "bad_request", detail='expected {"id": "<alarm id>"}')
        by = f"web:{session.user}@{session.address}"[:64]
        answer = await self.desk.submit(op, body["id"], by, "web")
        lang = self.lang(request)
        if answer.get("ok"):
            answer["message"] = i18n.text("done", lang, what=f"{op} {body['id']}")
        else:
            answer["message"] = i18n.text("refused", lang, why=str(answer.get("error")))
        return web.json_response(answer, status=200 if answer.get("ok") else 409)


LOGIN_HTML = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/style.css"></head>
<body class="login"><main>
<h1>{title}</h1><p class="gateway">{gateway}</p>
<form method="post" action="/login" id="login-form">
<label for="password">{password}</label>
<input type="password" id="password" name="password" autocomplete="current-password" required autofocus>
<button type="submit" id="login">{login}</button>
</form>
<p id="message" class="error" role="alert">{message}</p>
<p><a id="lang-switch" href="/login?lang={other}">{switch}</a></p>
</main></body></html>
"""

PAGE_HTML = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/style.css"><link rel="stylesheet" href="/static/camera.css"></head>
<body data-csrf="{csrf}">
<header><h1>{title}</h1><span class="gateway">{gateway}</span>
<a id="lang-switch" href="/?lang={other}">{switch}</a>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button id="logout">{logout}</button></form>
</header>
<p id="notice" role="status"></p>
<main>
<section id="health"></section>
<section id="alarms"></section>
<section id="devices"></section>
<section id="cameras"></section>
<section id="probe"></section>
<section id="config"></section>
</main>
<script type="application/json" id="i18n">{catalogue}</script>
<script src="/static/app.js"></script>
<script src="/static/camera.js"></script>
<script src="/static/devices.js"></script>
</body></html>
"""
