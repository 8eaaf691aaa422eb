"""Editing the configuration from the page, against the real agent: the loader decides, saves are atomic,
two technicians cannot overwrite each other, and every applied change is a config-audit record."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.support.broker import Collector
from tests.web.browser import Browser
from tests.web.conftest import PASSWORD, Site

AGENT_EVENTS = "headframe/test-site/gw-test/event/agent"


def logged_in(site: Site) -> tuple[Browser, str]:
    b = Browser(site.url)
    assert b.login(PASSWORD)[0] == 303
    return b, b.csrf()


def post(b: Browser, path: str, token: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"X-CSRF-Token": token} if token else {})}
    status, _, raw = b.call("POST", path, json.dumps(body).encode(), headers)
    return status, json.loads(raw)


def with_interval(text: str, interval: str) -> str:
    doc = json.loads(text)
    doc["devices"][0]["groups"][0]["interval"] = interval
    return json.dumps(doc, indent=2)


def test_check_save_reload_and_refusals(site: Site) -> None:
    events = Collector(site.broker, [AGENT_EVENTS], client_id="cfg-audit").start()
    try:
        b, token = logged_in(site)
        status, _, raw = b.call("GET", "/api/config")
        assert status == 200
        current = json.loads(raw)
        before, mode = site.config.read_bytes(), site.config.stat().st_mode
        assert current["text"].encode() == before and current["hash"].startswith("sha256:")

        # invalid: the loader's own message names the key; nothing is written
        bad = with_interval(current["text"], "every now and then")
        status, answer = post(b, "/api/config/check", token, {"text": bad})
        assert status == 200 and not answer["ok"]
        assert any("devices[0].groups[0].interval" in p and "duration" in p for p in answer["problems"]), answer
        status, answer = post(b, "/api/config/save", token, {"text": bad, "hash": current["hash"]})
        assert status == 422 and "未保存" in answer["message"] and site.config.read_bytes() == before

        # forged: no token, nothing written
        assert (
            post(b, "/api/config/save", None, {"text": with_interval(current["text"], "300ms"), "hash": current["hash"]})[0]
            == 403
        )
        assert site.config.read_bytes() == before

        # valid: the diff shows the change, the save applies it and the audit records it
        good = with_interval(current["text"], "300ms")
        status, answer = post(b, "/api/config/check", token, {"text": good})
        assert (
            answer["ok"]
            and '-          "interval": "200ms"' in answer["diff"]
            and '+          "interval": "300ms"' in answer["diff"]
        )
        status, answer = post(b, "/api/config/save", token, {"text": good, "hash": current["hash"]})
        assert status == 200 and answer["saved"] and answer["reloaded"] and answer["restart_needed"] == [], answer
        assert site.config.read_text() == good and site.config.stat().st_mode == mode  # atomic replace keeps the mode

        def reload_audited(messages: list[Any]) -> bool:
            return any(
                m.json()["payload"].get("event") == "config_applied"
                and m.json()["payload"].get("trigger") == "reload"
                and any("plc-1" in k for k in m.json()["payload"].get("changed", []))
                for m in messages
            )

        events.wait_for(reload_audited, timeout=20)

        # a change a reload cannot apply is saved and said to need a restart
        current = json.loads(b.call("GET", "/api/config")[2])
        doc = json.loads(current["text"])
        doc["control"]["enabled"] = True
        doc["control"]["socket"] = str(site.config.parent / "c.sock")
        status, answer = post(b, "/api/config/save", token, {"text": json.dumps(doc, indent=2), "hash": current["hash"]})
        assert status == 200 and answer["restart_needed"] == ["control"] and "重启" in answer["message"], answer
        good = json.dumps(doc, indent=2)

        # a save against the version before it (a second technician's stale page) is refused
        status, answer = post(
            b, "/api/config/save", token, {"text": with_interval(current["text"], "1s"), "hash": current["hash"]}
        )
        assert status == 409 and site.config.read_text() == good
    finally:
        events.stop()


def test_two_technicians_saving_at_once_one_wins(site: Site) -> None:
    (b1, t1), (b2, t2) = logged_in(site), logged_in(site)
    current = json.loads(b1.call("GET", "/api/config")[2])
    results: dict[str, int] = {}

    def save(name: str, b: Browser, token: str, interval: str) -> None:
        results[name] = post(
            b, "/api/config/save", token, {"text": with_interval(current["text"], interval), "hash": current["hash"]}
        )[0]

    threads = [
        threading.Thread(target=save, args=("one", b1, t1, "400ms")),
        threading.Thread(target=save, args=("two", b2, t2, "500ms")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == [200, 409], results
    winner = "400ms" if results["one"] == 200 else "500ms"
    assert json.loads(site.config.read_text())["devices"][0]["groups"][0]["interval"] == winner
