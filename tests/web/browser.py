"""A cookie-keeping HTTP client for the page's API (urllib; redirects are asserted, not followed)."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects (we assert them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=10) as res:
                return res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def login(self, password: str) -> tuple[int, dict[str, str], bytes]:
        form = urllib.parse.urlencode({"password": password}).encode()
        return self.call("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})

    def csrf(self) -> str:
        status, _, page = self.call("GET", "/")
        assert status == 200
        text = page.decode()
        start = text.index('data-csrf="') + len('data-csrf="')
        return text[start : text.index('"', start)]

    def alarm(self, op: str, alarm_id: str, token: str | None, origin: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-CSRF-Token"] = token
        if origin is not None:
            headers["Origin"] = origin
        status, _, body = self.call("POST", f"/api/alarms/{op}", json.dumps({"id": alarm_id}).encode(), headers)
        return status, json.loads(body)
