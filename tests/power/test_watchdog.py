"""Withheld watchdog pings are written to the run state, so a kill on this boot reads as a watchdog kill."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import agent.daemon as daemon_mod
from agent.power.boot import classify, read_boot_id
from config import load_settings
from tests.power.helpers import agent_config, run_state
from tests.spine.test_systemd import NotifySocket, _run_daemon_in_thread


def test_a_stalled_buffer_writer_is_recorded_then_cleared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setattr(daemon_mod, "WRITER_STALL_S", 0.5)
    settings = load_settings(agent_config(tmp_path))
    sock = NotifySocket(tmp_path / "notify.sock")
    seen: dict[str, object] = {}

    def body(d: daemon_mod.Daemon) -> None:
        while len(sock.pings()) < 3:
            time.sleep(0.02)
        assert not run_state(tmp_path).get("watchdog_withheld")
        d.buffer._pool.submit(time.sleep, 2.5)  # a disk that hangs the buffer thread
        deadline = time.monotonic() + 2.3
        while time.monotonic() < deadline and not run_state(tmp_path).get("watchdog_withheld"):
            time.sleep(0.05)
        seen["during"] = run_state(tmp_path).get("watchdog_withheld")
        # had systemd killed it now, the next start would say so:
        seen["ended"] = classify(run_state(tmp_path), read_boot_id())[0]
        # the stall ends, pings resume and the mark is removed (waited for: a loaded machine is slower)
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and run_state(tmp_path).get("watchdog_withheld"):
            time.sleep(0.05)
        seen["after"] = run_state(tmp_path).get("watchdog_withheld")
        d.loop.call_soon_threadsafe(d.stop_event.set)

    _run_daemon_in_thread(settings, sock.path, body)
    sock.close()
    assert seen["during"] and seen["during"]["why"] == "buffer writer stalled", seen  # type: ignore[index]
    assert seen["ended"] == "watchdog"
    assert seen["after"] is None
    assert run_state(tmp_path)["clean"] is True
