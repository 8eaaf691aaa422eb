"""Adding a device from a profile, at the aiohttp level: the loader refuses bad input in the technician's
language naming the key, forged requests are refused, a valid entry goes the config editor's save path,
and "probe first" reads the profile's first point from a real pymodbus device.

The daemon's reload is the one fake here (``FakeReload``, it only counts): the real reload and the
live values of the new device are tested end to end in test_web_devices_chromium.py.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.web.app import WebPage
from agent.web.config_routes import ConfigRoutes
from agent.web.configedit import ConfigEditor
from agent.web.device_add import add_device, device_entry
from agent.web.device_routes import DeviceRoutes
from agent.web.live import LiveView
from agent.web.passwords import hash_password
from agent.web.probe_routes import ProbeRoutes
from config import load_settings_text, parse_yaml
from config.web import WebSettings
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.support.broker import free_port

PASSWORD = "a long enough password"
CONFIG = """\
# the site's gateway
gateway: {site: s, id: g}
buses:
  - {name: rs485, port: /dev/ttyHF-test-none, baudrate: 9600}
devices:
  - id: plc-1   # the hoist PLC
    protocol: modbus_tcp
    host: 127.0.0.1
    points: [{name: level, address: 0}]

# where records go
uplink: {host: 127.0.0.1}
"""


class FakeReload:
    """Stands in for the daemon's reload (SIGHUP path); counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return True


Call = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


def run(tmp_path: Path, body: Callable[[Call, Path, FakeReload], Awaitable[None]]) -> None:
    """A page with the device form on a real aiohttp server; ``body`` gets a logged-in caller."""
    config = tmp_path / "headframe.yaml"
    config.write_text(CONFIG)
    (tmp_path / "web.password").write_text(hash_password(PASSWORD) + "\n")
    cfg = WebSettings(enabled=True, password_file=tmp_path / "web.password")
    reload = FakeReload()
    routes = ConfigRoutes(ConfigEditor(config), reload)
    probe = ProbeRoutes(lambda: ({}, {}))

    async def no_alarms() -> list[dict[str, Any]]:
        return []

    page = WebPage(cfg, LiveView(), None, no_alarms, "s/g", routes, probe)  # type: ignore[arg-type]  # no alarms here
    page.extra.append(DeviceRoutes(routes, probe))

    async def go() -> None:
        async with TestClient(TestServer(page.app())) as client:
            res = await client.post("/login", data={"password": PASSWORD}, allow_redirects=False)
            assert res.status == 303
            html = await (await client.get("/")).text()
            token = re.search(r'data-csrf="([^"]+)"', html)
            assert token is not None

            async def call(
                path: str, body: dict[str, Any], *, csrf: bool = True, lang: str = "zh", origin: str | None = None
            ) -> tuple[int, dict[str, Any]]:
                headers = {"Accept-Language": lang}
                if csrf:
                    headers["X-CSRF-Token"] = token.group(1)
                if origin:
                    headers["Origin"] = origin
                r = await client.post(path, json=body, headers=headers)
                return r.status, await r.json()

            await body(call, config, reload)

    asyncio.run(go())


def tcp(**over: Any) -> dict[str, Any]:
    return {"profile": "siemens_s7_1200_hoist", "protocol": "modbus_tcp", "id": "hoist-2", "host": "127.0.0.1", **over}


REFUSALS = [
    # (form, key path named, Chinese explanation, English explanation)
    (tcp(id="plc-1"), "devices[1].id", "不重复的设备 id", "a device id used once"),
    (tcp(profile="no_such_meter"), "devices[1].profile", "以下之一", "one of ["),
    (tcp(port="70000"), "devices[1].port", "小于或等于 65535", "less than or equal to 65535"),
    (tcp(unit=248), "devices[1].unit", "小于或等于 247", "less than or equal to 247"),
    (
        {"profile": "eastron_sdm630", "protocol": "modbus_rtu", "id": "m-0", "bus": "rs485", "unit": "0"},
        "devices[1].unit",
        "0 是广播地址",
        "0 is the broadcast address",
    ),
    (tcp(profile="dlt645_three_phase"), "devices[1].profile", "适用于 modbus_tcp 设备的模板", "a profile for modbus_tcp"),
    (
        {"profile": "dlt645_three_phase", "protocol": "dlt645", "id": "meter-9", "bus": "rs485", "address": "12345"},
        "devices[1]",
        "电表的 12 位地址",
        "the meter's 12-digit address",
    ),
]


@pytest.mark.parametrize(
    ("form", "key", "zh", "en"), REFUSALS, ids=["duplicate", "profile", "port", "unit248", "unit0", "family", "meter"]
)
def test_bad_input_is_refused_with_the_loaders_words_in_the_technicians_language(
    tmp_path: Path, form: dict[str, Any], key: str, zh: str, en: str
) -> None:
    async def body(call: Call, config: Path, reload: FakeReload) -> None:
        for path in ("/api/devices/preview", "/api/devices/add"):
            status, answer = await call(path, form)
            assert status == 422 and "未保存" in answer["message"], answer
            assert any(key in p and zh in p for p in answer["explained"]), answer["explained"]
            assert any(key in p and en in p for p in answer["problems"]), answer["problems"]  # as logged
            status, answer = await call(path, form, lang="en")
            assert status == 422 and any(key in p and en in p for p in answer["explained"]), answer["explained"]
        assert config.read_text() == CONFIG and reload.calls == 0

    run(tmp_path, body)


def test_forged_requests_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    async def body(call: Call, config: Path, reload: FakeReload) -> None:
        status, answer = await call("/api/devices/add", tcp(), csrf=False)
        assert status == 403 and answer["error"] == "forged_request" and "CSRF" in answer["message"]
        status, answer = await call("/api/devices/add", tcp(), origin="http://evil.example")
        assert status == 403 and answer["error"] == "bad_origin"
        status, answer = await call("/api/devices/add", {**tcp(), "extra": "<script>"})
        assert status == 400 and answer["error"] == "bad_request"
        assert config.read_text() == CONFIG and reload.calls == 0

    run(tmp_path, body)


def test_a_valid_device_is_previewed_then_saved_the_editors_way(tmp_path: Path) -> None:
    async def body(call: Call, config: Path, reload: FakeReload) -> None:
        status, preview = await call("/api/devices/preview", tcp(port="1502", unit="2", interval="500ms"))
        assert status == 200 and preview["ok"], preview
        added = [line for line in preview["diff"].splitlines() if line.startswith("+") and not line.startswith("+++")]
        removed = [line for line in preview["diff"].splitlines() if line.startswith("-") and not line.startswith("---")]
        assert removed == [] and added[0] == '+  - id: "hoist-2"' and "+    port: 1502" in added, preview["diff"]
        assert config.read_text() == CONFIG  # a preview writes nothing

        status, answer = await call("/api/devices/add", {**tcp(port="1502", unit="2", interval="500ms"), "hash": preview["hash"]})
        assert status == 200 and answer["saved"] and answer["reloaded"] and reload.calls == 1, answer
        text = config.read_text()
        assert (
            text.startswith(CONFIG.split("\n# where")[0])
            and "# the hoist PLC" in text
            and text.endswith("uplink: {host: 127.0.0.1}\n")
        )
        dev = load_settings_text(text).devices[1]
        assert (dev.id, dev.profile, dev.port, dev.unit, dev.groups[0].interval) == (
            "hoist-2",
            "siemens_s7_1200_hoist",
            1502,
            2,
            0.5,
        )

        # the same preview again: its file version is gone, nobody's change is overwritten
        status, answer = await call("/api/devices/add", {**tcp(id="hoist-3"), "hash": preview["hash"]})
        assert status == 409 and "别人" in answer["message"] and reload.calls == 1

    run(tmp_path, body)


def test_probe_first_reads_the_profiles_first_point_or_says_why_not(tmp_path: Path) -> None:
    image = RegisterImage(size=100)
    image.set_registers("holding", 0, list(struct.unpack(">HH", struct.pack(">f", 1.25))))  # hoist_speed
    port = free_port()
    plc = ServerThread({1: image}, tcp_port=port).start()
    dead = free_port()

    async def body(call: Call, config: Path, reload: FakeReload) -> None:
        status, answer = await call("/api/devices/preview", tcp(port=str(port), probe=True))
        assert status == 200 and answer["ok"] and answer["probe"] == {"point": "hoist_speed", "value": 1.25, "unit": "m/s"}
        assert "hoist_speed = 1.25 m/s" in answer["message"]
        status, answer = await call("/api/devices/preview", tcp(port=str(dead), probe=True))
        assert status == 200 and not answer["ok"] and "无法连接" in answer["message"] and "未添加" in answer["message"]
        # the register probe itself says it in the technician's language too (the English reason kept)
        status, answer = await call("/api/probe", {"protocol": "modbus_tcp", "host": "127.0.0.1", "port": dead, "address": 0})
        assert answer["message"] == f"无法连接 127.0.0.1:{dead}（被拒绝或不可达）" and "cannot connect" in answer["error"], answer
        assert config.read_text() == CONFIG and reload.calls == 0

    try:
        run(tmp_path, body)
    finally:
        plc.stop()


def test_the_entry_is_data_whatever_is_typed() -> None:
    hostile = device_entry({"protocol": "modbus_tcp", "id": "x\n  - id: y", "profile": "p", "host": "h: {a: 1}"})
    tree = parse_yaml(add_device(CONFIG, hostile), "t")
    assert len(tree["devices"]) == 2 and tree["devices"][1]["id"] == "x\n  - id: y" and tree["devices"][1]["host"] == "h: {a: 1}"
