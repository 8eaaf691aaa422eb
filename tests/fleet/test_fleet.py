"""Fleet view with real mosquitto, two real agents, a malformed publisher, and headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from agent.fleet.model import FleetState
from agent.fleet.view import text_table
from agent.uplink.status import iso
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.chromium import chromium, needs_chromium, waiter


def health(depth: int, **extra) -> bytes:
    payload = {
        "schema": "headframe.health/1",
        "buffer": {"depth": depth, "dropped": {}},
        "clock": {"synchronized": True},
        "system": {},
        "producers": {},
        **extra,
    }
    return orjson.dumps({"seq": 1, "payload": payload})


def test_model_flags_problems_and_survives_garbage() -> None:
    now = [1000.0]
    fleet = FleetState(offline_after_s=300, clock=lambda: now[0])
    fleet.on_message("headframe/s/a/status", b'{"status": "online"}')
    for depth in (10, 20, 30, 40):
        now[0] += 30
        fleet.on_message(
            "headframe/s/a/health/agent",
            health(depth, producers={"vision": {"cameras": {"cam-1": {"state": "running", "tamper": ["covered"]}}}}),
        )
    fleet.on_message("headframe/s/b/health/agent", b"\x00not json")
    fleet.on_message("headframe/s/c/status", b'{"status": "offline", "reason": "connection lost"}')
    now[0] += 400
    fleet.on_message("headframe/s/d/health/agent", orjson.dumps({"payload": {"schema": "other"}}))
    rows = {r["gateway"]: r for r in fleet.rows()}
    assert any("backlog growing" in p for p in rows["s/a"]["problems"])
    assert "camera cam-1 tampered: covered" in rows["s/a"]["problems"]
    assert rows["s/b"]["problems"][0].startswith("malformed health")
    assert rows["s/c"]["problems"][0].startswith("offline for 6 min (connection lost)")
    assert "malformed" in rows["s/d"]["problems"][0]


def test_model_takes_times_from_the_gateway_not_from_when_it_reads() -> None:
    """A consumer that starts now and reads retained status must see when things happened."""
    now = [2_000_000_000.0]
    fleet = FleetState(offline_after_s=300, clock=lambda: now[0])
    fleet.on_message(
        "headframe/s/a/status",
        orjson.dumps(
            {
                "status": "online",
                "since": iso(now[0] - 3600),
                "session": {"started": iso(now[0] - 3601)},
                "previous_session": {"lost_at": iso(now[0] - 3690), "down_s": 90.0, "reason": "connection lost: keepalive"},
            }
        ),
    )
    fleet.on_message(
        "headframe/s/b/health/agent",
        orjson.dumps(
            {
                "seq": 9,
                "ts": iso(now[0] - 7200),
                "payload": {
                    "schema": "headframe.health/1",
                    "buffer": {"depth": 0, "dropped": {}},
                    "clock": {"synchronized": True},
                },
            }
        ),
    )
    fleet.on_message(
        "headframe/s/b/status",
        orjson.dumps(
            {
                "status": "offline",
                "reason": "connection lost",
                "session_started": iso(now[0] - 86400),
                "last_seen_by_gateway": iso(now[0] - 86400),
            }
        ),
    )
    fleet.on_message(
        "headframe/s/c/status", orjson.dumps({"status": "offline", "reason": "shutdown", "since": iso(now[0] - 2 * 86400)})
    )
    rows = {r["gateway"]: r for r in fleet.rows()}
    assert fleet.gateways["s/a"].status_since == pytest.approx(now[0] - 3600)
    assert rows["s/a"]["previous_down_s"] == 90.0 and rows["s/a"]["problems"] == []
    # the will cannot know when the gateway died: the last sign of life (its last health record) stands in
    assert fleet.gateways["s/b"].status_since == pytest.approx(now[0] - 7200)
    assert "offline for 120 min since the last sign of life (connection lost)" in rows["s/b"]["problems"]
    assert rows["s/c"]["problems"][0] == "offline for 2880 min (shutdown)"
    assert "previous outage: 90 s down (connection lost: keepalive)" in text_table(fleet.rows())


@pytest.fixture
def two_agents(tmp_path: Path, broker):
    agents = []
    for gw in ("gw-north", "gw-south"):
        cfg = write_config(tmp_path / f"{gw}.yaml", broker.port, buffer_path=tmp_path / f"{gw}.db", extra={"gateway": {"id": gw}})
        agents.append(AgentProcess(cfg))
    bad = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad-gw")
    bad.connect("127.0.0.1", broker.port)
    bad.loop_start()
    bad.publish("headframe/test-site/gw-broken/health/agent", b"{half a json", qos=1, retain=True).wait_for_publish(5)
    bad.publish("headframe/test-site/gw-broken/status", b'{"status": "online"}', qos=1, retain=True).wait_for_publish(5)
    # wait until both agents are up (their retained online status and a health record), not a fixed time:
    # on a loaded machine start-up can take longer than any sleep we would pick
    seen: set[str] = set()
    watch = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fixture-watch")
    watch.on_message = lambda c, u, m: seen.add(m.topic)
    watch.connect("127.0.0.1", broker.port)
    watch.subscribe([("headframe/test-site/+/status", 1), ("headframe/test-site/+/health/#", 1)])
    watch.loop_start()
    want = {f"headframe/test-site/{gw}/{what}" for gw in ("gw-north", "gw-south") for what in ("status", "health/agent")}
    deadline = time.monotonic() + 30
    while not want <= seen and time.monotonic() < deadline:
        time.sleep(0.1)
    watch.loop_stop()
    watch.disconnect()
    assert want <= seen, f"agents did not come up within 30 s: saw {sorted(seen)}"
    yield broker
    for a in agents:
        a.terminate()
    bad.loop_stop()


def test_fleet_once_shows_real_agents_and_a_malformed_one(two_agents) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", "--broker", f"127.0.0.1:{two_agents.port}", "--once", "--wait", "2.5"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "test-site/gw-north" in out and "test-site/gw-south" in out
    north = next(line for line in out.splitlines() if line.startswith("test-site/gw-north"))
    assert "online" in north
    assert "!! malformed health" in out


@needs_chromium
def test_fleet_page_in_headless_chromium(two_agents, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "fleet", "--broker", f"127.0.0.1:{two_agents.port}", "--http", f"127.0.0.1:{port}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with chromium(tmp_path / "prof", lang="en-US") as driver:
            time.sleep(1.0)
            driver.get(f"http://127.0.0.1:{port}/")
            # the page re-renders its rows as health arrives: read them in one script, not element by element
            read_rows = (
                "return [...document.querySelectorAll('tr[data-gateway]')]"
                ".map(r => [r.dataset.gateway, r.className, r.innerText])"
            )
            waiter(driver).until(lambda d: len(d.execute_script(read_rows)) >= 3)
            rows = {gw: (cls, text) for gw, cls, text in driver.execute_script(read_rows)}
            assert "online" in rows["test-site/gw-north"][0]
            assert "malformed health" in rows["test-site/gw-broken"][1]
            shot = tmp_path / "fleet.png"
            driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 5000
    finally:
        proc.terminate()
        proc.wait(10)
