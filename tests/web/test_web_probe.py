"""Register probe and bus scan from the page, against the real agent, a real TCP PLC and a real RS-485
line (socat pty pair) that the agent is polling at the same time."""

from __future__ import annotations

import json
from typing import Any

from tests.support.broker import free_port
from tests.web.browser import Browser
from tests.web.conftest import PASSWORD, Site


def session(site: Site) -> tuple[Browser, str]:
    b = Browser(site.url)
    assert b.login(PASSWORD)[0] == 303
    return b, b.csrf()


def post(b: Browser, path: str, token: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"X-CSRF-Token": token} if token else {})}
    status, _, raw = b.call("POST", path, json.dumps(body).encode(), headers)
    return status, json.loads(raw)


def test_probe_tcp_and_rtu_through_the_agents_bus(site: Site) -> None:
    b, token = session(site)
    plc = json.loads(site.config.read_text())["devices"][0]
    status, answer = post(
        b, "/api/probe", token, {"protocol": "modbus_tcp", "host": "127.0.0.1", "port": plc["port"], "address": 0}
    )
    assert status == 200 and answer["ok"] and answer["values"] == [[0, 1234]] and answer["raw"] == ["04D2"], answer
    # unit 7 on the line the agent polls (unit 3): the page goes through the agent's own bus
    status, answer = post(
        b, "/api/probe", token, {"protocol": "modbus_rtu", "bus": "rs485", "unit": 7, "address": 10, "type": "float32"}
    )
    assert answer["ok"] and answer["values"] == [[10, 12.5]], answer
    # a silent unit: the technician's words, not a traceback
    status, answer = post(b, "/api/probe", token, {"protocol": "modbus_rtu", "bus": "rs485", "unit": 9, "address": 0})
    assert status == 200 and not answer["ok"] and answer["kind"] == "Timeout" and "wiring" in answer["error"]
    # nobody listening there
    status, answer = post(
        b, "/api/probe", token, {"protocol": "modbus_tcp", "host": "127.0.0.1", "port": free_port(), "address": 0}
    )
    assert not answer["ok"] and answer["kind"] == "Unreachable" and "cannot connect" in answer["error"]


def test_probe_refuses_what_it_must_not_do(site: Site) -> None:
    b, token = session(site)
    ok = {"protocol": "modbus_tcp", "host": "127.0.0.1", "address": 0}
    assert post(b, "/api/probe", None, ok)[0] == 403  # forged
    for bad, where in (
        ({**ok, "host": "x/../../etc"}, "host"),
        ({**ok, "count": 1000}, "count"),
        ({**ok, "timeout": 60}, "timeout"),
        ({**ok, "extra": 1}, "extra"),
        ({"protocol": "modbus_rtu", "bus": "ttyS0", "address": 0}, "bus"),  # only configured buses
    ):
        status, answer = post(b, "/api/probe", token, bad)
        assert status == 400 and where in answer["message"], (bad, answer)


def test_scan_finds_the_units_on_the_line_while_the_agent_polls(site: Site) -> None:
    b, token = session(site)
    status, answer = post(b, "/api/scan", token, {"bus": "rs485", "first": 1, "last": 8, "timeout": 0.1})
    assert status == 200 and answer["ok"] and answer["finished"], answer
    assert [f["unit"] for f in answer["found"]] == [3, 7]
    # the agent's own polling of unit 3 went on: its value is live on the page
    state = json.loads(b.call("GET", "/api/state")[2])
    assert state["devices"]["meter-3"]["points"][0]["v"] == 12.5
