"""The technician page's security over real HTTP against the real agent: passwords, sessions, CSRF, origin."""

from __future__ import annotations

import json
import urllib.parse

from tests.support.wait import wait_until
from tests.web.browser import Browser
from tests.web.conftest import PASSWORD, Site

ALARM = "agent:buffer_corrupt"


def test_login_session_csrf_and_origin(site: Site) -> None:
    b = Browser(site.url)
    # not logged in: the page sends you to the login, the API refuses
    status, headers, _ = b.call("GET", "/")
    assert status == 303 and headers["Location"].startswith("/login")
    assert b.call("GET", "/api/state")[0] == 401

    status, headers, body = b.login("wrong password!")
    assert status == 401 and "密码错误" in body.decode()  # the site default language is Chinese
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"

    status, headers, _ = b.login(PASSWORD)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    state = json.loads(b.call("GET", "/api/state")[2])
    wait_until(
        "the alarm to be open", lambda: any(a["id"] == ALARM for a in json.loads(b.call("GET", "/api/state")[2])["open_alarms"])
    )
    assert "devices" in state

    token = b.csrf()
    # a forged request (no token, wrong token) and a cross-site one are refused and change nothing
    status, answer = b.alarm("ack", ALARM, None)
    assert status == 403 and answer["error"] == "forged_request"
    assert b.alarm("ack", ALARM, "x" * 43)[0] == 403
    status, answer = b.alarm("ack", ALARM, token, origin="http://evil.example")
    assert status == 403 and answer["error"] == "bad_origin"
    open_alarm = next(a for a in json.loads(b.call("GET", "/api/state")[2])["open_alarms"] if a["id"] == ALARM)
    assert open_alarm["state"] == "raised"

    # the real thing goes through the buffer to the alarm manager and back
    status, answer = b.alarm("ack", ALARM, token)
    assert status == 200 and answer["ok"] and answer["reply"]["result"] == "ok", answer
    assert answer["reply"]["id"].startswith("web-")
    status, answer = b.alarm("ack", ALARM, token)  # again: refused by the alarm manager, in words
    assert status == 409 and "already" in answer["message"]
    acked = next(a for a in json.loads(b.call("GET", "/api/state")[2])["open_alarms"] if a["id"] == ALARM)
    assert acked["state"] == "acknowledged" and acked["by"]["acknowledged"].startswith("web:technician@127.0.0.1")

    # logging out ends the session
    form = urllib.parse.urlencode({"csrf": token}).encode()
    assert b.call("POST", "/logout", form, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 303
    assert b.call("GET", "/api/state")[0] == 401


def test_failed_logins_lock_the_address_out(site: Site) -> None:
    b = Browser(site.url)
    for _ in range(5):
        assert b.login("not the password")[0] == 401
    status, _, body = b.login(PASSWORD)  # even the right password waits now
    assert status == 429 and "秒后再试" in body.decode()
    status, _, body = Browser(site.url).call("GET", "/login?lang=en")
    assert status == 200 and "Password" in body.decode()


def test_the_password_file_holds_a_hash_only(site: Site) -> None:
    text = site.password_file.read_text()
    assert text.startswith("scrypt$") and PASSWORD not in text
    assert site.password_file.stat().st_mode & 0o077 == 0
