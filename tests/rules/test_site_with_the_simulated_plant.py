"""The simulated site's own config and PLC: pumps and fans raise nothing, hoist and belt do.

Real parts: the HIL site's agent config (hil/site.py), the PLC simulator over Modbus TCP
(hil/sim/plc.py) polled by the real DevicePoller; its telemetry records feed the rule as the
buffer would hand them over once committed.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from buffer.record import Committed, Kind, Record
from buffer.sink import ListSink
from config import load_settings_text
from drivers.runtime import build as build_drivers
from hil.camera_server import CameraServer
from hil.sim.plc import PlcSimulator, ProcessModel
from hil.site import MEDIA, Site, free_port
from rules.site import SecretlyRunningRule, build


def site_settings(tmp_path: Path, plc_port: int, declared: str):  # type: ignore[no-untyped-def]
    site = Site(tmp_path)
    site.broker_port, site.plc_port = free_port(), plc_port
    site.rtu_agent_end, site.dlt_agent_end = "/dev/null-rtu", "/dev/null-645"
    site.cameras = CameraServer({"shaft": MEDIA / "vtest.avi", "seal": MEDIA / "tree.avi"})
    doc = json.loads(site.config(tmp_path / "c.json", tmp_path / "b.db", declared=declared).read_text())
    for dev in doc["devices"]:
        dev["enabled"] = dev["id"] == "plc-hoist"  # the meters sit on socat ptys of the full rig
    return load_settings_text(json.dumps(doc), "hil-site.json")


def poll_once(settings, sink: ListSink) -> None:  # type: ignore[no-untyped-def]
    drivers = build_drivers(settings, sink)
    assert drivers is not None

    async def run() -> None:
        for poller in drivers.pollers:
            await poller.poll("default")
            await poller.driver.close()

    asyncio.run(run())


def run_mode(tmp_path: Path, mode: str) -> tuple[SecretlyRunningRule, list[Record]]:
    model = ProcessModel()
    model.mode = mode
    port = free_port()
    plc = PlcSimulator(port, model).start()
    try:
        settings = site_settings(tmp_path, port, "stopped")
        [rule] = [r for r in build(settings) if r.name == "secretly_running:site"]
        sink = ListSink()
        time.sleep(0.5)  # the simulator refreshes its registers every 200 ms
        poll_once(settings, sink)
    finally:
        plc.stop()
    batch = [Committed(i + 1, r, "00" * 32) for i, r in enumerate(sink.records)]
    assert any(c.record.kind is Kind.TELEMETRY for c in batch), sink.records
    now = max(c.record.ts for c in batch)
    return rule, rule.apply(batch, now)


def test_pumps_and_fans_of_a_stopped_site_raise_nothing(tmp_path: Path) -> None:
    rule, out = run_mode(tmp_path, "pumps_and_fans")
    assert [r.payload["alarm"] for r in out if r.kind is Kind.ALARM] == []
    assert rule.observed == "quiet"
    now = max(ts for _, _, ts, _ in rule.points.last.values())
    assert rule.points.value("plc-hoist.fan_running", now) is True  # the expected loads did run
    assert rule.points.value("plc-hoist.pump1_running", now) is not None


def test_belt_and_hoist_of_a_stopped_site_raise_secretly_running(tmp_path: Path) -> None:
    _, out = run_mode(tmp_path, "secretly_running")
    [a] = [r.payload for r in out if r.kind is Kind.ALARM]
    assert (a["alarm"], a["state"], a["id"]) == ("secretly_running", "raised", "site:secretly_running:site")
    plc = {x["point"]: x["v"] for x in a["evidence"]["plc"]}
    assert plc["plc-hoist.belt_running"] is True
