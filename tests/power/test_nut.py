"""Mains/UPS monitoring against a REAL upsd with the dummy-ups driver (NUT 2.8).

The test flips the driver's state file (OL → OB → OL → OB LB) and checks what the agent
committed to its buffer, and how fast.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.power.gpio import GpioSource
from agent.power.monitor import PowerMonitor
from agent.power.nut import NutSource
from buffer.record import Record
from config.power import GpioSettings, NutSettings, PowerSettings
from tests.power.helpers import agent_config, alarms, events, last_power_health, run_state, start_agent, wait_for
from tests.support.broker import free_port
from tests.support.nut import NutServer

#: From a flip of the state file to the committed alarm: driver poll (1 s) + agent poll (0.2 s) + commit.
MAINS_ALARM_BOUND_S = 4.0


def nut_power(server: NutServer, **extra: Any) -> dict[str, Any]:
    return {
        "source": "nut",
        "nut": {"port": server.port, "ups": server.ups, "timeout": "2s"},
        "poll": "0.2s",
        "retry_min": "0.2s",
        "retry_max": "1s",
        **extra,
    }


def test_mains_lost_cleared_then_low_battery_stops_cleanly(tmp_path: Path, nut: NutServer) -> None:
    cfg = agent_config(tmp_path, nut_power(nut))
    agent, _ = start_agent(tmp_path, cfg, "1")
    wait_for(lambda: (last_power_health(tmp_path) or {}).get("state") == "mains", 10, "health power=mains")
    assert not alarms(tmp_path, "raised")

    flipped = time.monotonic()
    nut.set_status("OB", charge=87, runtime=1200)
    raised = wait_for(lambda: alarms(tmp_path, "raised"), MAINS_ALARM_BOUND_S, "mains_lost raised")
    print(f"mains_lost committed {time.monotonic() - flipped:.2f}s after the flip")
    assert raised[0] == {
        "alarm": "mains_lost",
        "state": "raised",
        "source_kind": "nut",
        "ups": nut.ups,
        "battery_charge": 87,
        "runtime_s": 1200,
    }
    assert run_state(tmp_path)["power"]["state"] == "on_battery"

    nut.set_status("OL", charge=90, runtime=1300)
    cleared = wait_for(lambda: alarms(tmp_path, "cleared"), MAINS_ALARM_BOUND_S, "mains_lost cleared")
    assert cleared[0]["battery_charge"] == 90
    assert agent.proc.poll() is None

    nut.set_status("OB", charge=30, runtime=300)
    wait_for(lambda: len(alarms(tmp_path, "raised")) == 2, MAINS_ALARM_BOUND_S, "second mains_lost")
    nut.set_status("OB LB", charge=9, runtime=60)
    failing = wait_for(lambda: events(tmp_path, "power_failing"), MAINS_ALARM_BOUND_S, "power_failing")
    assert failing[0]["battery_charge"] == 9 and failing[0]["runtime_s"] == 60
    # the agent stops by itself, cleanly, having flushed
    assert agent.proc.wait(20) == 0
    stopping = events(tmp_path, "agent_stopping")
    assert stopping and stopping[-1]["reason"] == "mains_failure"
    assert run_state(tmp_path)["clean"] is True
    assert len(alarms(tmp_path, "raised")) == 2  # one per outage, not one per poll

    nut.set_status("OL")
    nut.wait_status("OL")
    agent, started = start_agent(tmp_path, cfg, "2")
    assert started["previous_run"]["ended"] == "mains_failure", started["previous_run"]
    assert "stopped cleanly" in started["previous_run"]["detail"]
    assert agent.terminate() == 0


def test_upsd_down_at_start_then_up(tmp_path: Path) -> None:
    server = NutServer(tmp_path / "nut")  # configured, not started
    cfg = agent_config(tmp_path, nut_power(server))
    agent, _ = start_agent(tmp_path, cfg, "1")
    power = wait_for(lambda: (last_power_health(tmp_path) or {}).get("last_error"), 10, "power error in health")
    assert f"127.0.0.1:{server.port} is not reachable" in power and "upsd running" in power
    assert (last_power_health(tmp_path) or {})["state"] == "unknown"
    server.set_status("OB", charge=50)
    server.start()
    wait_for(lambda: alarms(tmp_path, "raised"), 10, "mains_lost once upsd answers")
    health = wait_for(lambda: (p := last_power_health(tmp_path)) and p["last_error"] is None and p, 10, "error gone")
    assert health["state"] == "on_battery" and health["battery_charge"] == 50
    assert agent.terminate() == 0
    assert "Traceback" not in agent.output()


# ------------------------------------------------------- the monitor in-process
class Recorder:
    """The commit callable the daemon hands over: records what was committed, with which durability."""

    def __init__(self) -> None:
        self.committed: list[tuple[Record, str]] = []
        self.stops: list[str] = []

    async def commit(self, records: Sequence[Record], durability: str) -> None:
        self.committed += [(r, durability) for r in records]

    def stop(self, reason: str) -> None:
        self.stops.append(reason)


async def _watch(monitor: PowerMonitor, until: Any, timeout: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert time.monotonic() < deadline, f"timed out; health {monitor.health()}"
            assert not task.done(), "the monitor loop ended"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _monitor(port: int, ups: str = "testups") -> tuple[PowerMonitor, Recorder]:
    settings = PowerSettings(
        source="nut", nut=NutSettings(port=port, ups=ups, timeout=1.0), poll=0.1, retry_min=0.1, retry_max=0.5
    )
    rec = Recorder()
    return PowerMonitor(settings, NutSource(settings.nut_or_default), rec.commit, rec.stop), rec


def test_upsd_killed_mid_run_is_an_error_then_recovers(tmp_path: Path, nut: NutServer) -> None:
    monitor, rec = _monitor(nut.port)

    async def scenario() -> None:
        await _watch(monitor, lambda: monitor.state == "mains", 10)
        nut.kill_upsd()
        await _watch(monitor, lambda: monitor.last_error is not None, 10)
        assert "is not reachable" in (monitor.last_error or "")
        assert monitor.state == "mains"  # an unreadable UPS is not a mains failure
        nut.set_status("OB", charge=70)
        nut.start_upsd()
        await _watch(monitor, lambda: monitor.last_error is None and monitor.state == "on_battery", 15)

    asyncio.run(scenario())
    assert [(r.payload["alarm"], r.payload["state"], d) for r, d in rec.committed] == [("mains_lost", "raised", "power_loss")]
    assert rec.stops == []


def test_unknown_ups_name_says_which_setting(nut: NutServer) -> None:
    monitor, _ = _monitor(nut.port, ups="no-such-ups")
    asyncio.run(_watch(monitor, lambda: monitor.last_error is not None, 10))
    assert "power.nut.ups" in (monitor.last_error or "") and "UNKNOWN-UPS" in (monitor.last_error or "")


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """A tiny TCP server on loopback that answers every line with nonsense (not the NUT protocol)."""
    port = free_port()
    srv = socket.create_server(("127.0.0.1", port))
    srv.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    while conn.recv(1024):
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\xff\xfe garbage\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    done.set()
    thread.join(5)
    srv.close()


def test_garbage_answer_is_a_health_error_not_a_crash(garbage_server: int) -> None:
    monitor, rec = _monitor(garbage_server)
    asyncio.run(_watch(monitor, lambda: monitor.last_error is not None, 10))
    assert "not the NUT protocol" in (monitor.last_error or ""), monitor.last_error
    assert monitor.health()["state"] == "unknown" and rec.committed == []


def test_ups_password_never_reaches_the_log_even_at_debug(
    tmp_path: Path, nut: NutServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "nut.pass"
    secret.write_text("test-secret\n")
    settings = PowerSettings(
        source="nut", nut=NutSettings(port=nut.port, ups=nut.ups, username="monitor", password_file=secret), poll=0.1
    )
    rec = Recorder()
    monitor = PowerMonitor(settings, NutSource(settings.nut_or_default), rec.commit, rec.stop)
    with caplog.at_level(logging.DEBUG):
        asyncio.run(_watch(monitor, lambda: monitor.state == "mains", 10))
    assert monitor.last_error is None
    assert "test-secret" not in caplog.text


def test_a_failed_commit_is_retried_at_the_next_poll(tmp_path: Path) -> None:
    """Nothing captured is lost: if the buffer refuses the alarm, the next poll commits it again."""
    fake_pin = tmp_path / "FAKE-pin"  # a NAMED FAKE GPIO line
    fake_pin.write_text("0\n")
    settings = PowerSettings(source="gpio", gpio=GpioSettings(path=fake_pin), poll=0.1)
    rec = Recorder()
    failures = [RuntimeError("disk full")]

    async def flaky_commit(records: Sequence[Record], durability: str) -> None:
        if failures:
            raise failures.pop()
        await rec.commit(records, durability)

    monitor = PowerMonitor(settings, GpioSource(settings.gpio), flaky_commit, rec.stop)
    asyncio.run(_watch(monitor, lambda: rec.committed, 5))
    assert [r.payload["state"] for r, _ in rec.committed] == ["raised"]


def test_agent_keeps_running_when_the_ups_port_answers_garbage(tmp_path: Path, garbage_server: int) -> None:
    cfg = agent_config(tmp_path, {"source": "nut", "nut": {"port": garbage_server, "timeout": "1s"}, "poll": "0.2s"})
    agent, _ = start_agent(tmp_path, cfg, "1")
    error = wait_for(lambda: (last_power_health(tmp_path) or {}).get("last_error"), 10, "power error in health")
    assert "not the NUT protocol" in error
    time.sleep(1.0)
    assert agent.proc.poll() is None
    assert agent.terminate() == 0
    assert "Traceback" not in agent.output()
