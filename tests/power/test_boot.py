"""How the last run ended, told from the run state and the kernel's boot id (real agent processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from agent.power.boot import build_start_evidence, classify, read_boot_id
from agent.power.markstop import mark_stopped
from agent.power.runstate import RUN_STATE_NAME
from tests.power.helpers import agent_config, run_state, start_agent, wait_for
from tests.support.agentproc import REPO

BOOT_ID = read_boot_id()


def test_boot_part_has_id_count_and_uptime(tmp_path: Path) -> None:
    first = build_start_evidence(tmp_path, last_seq=0)
    assert first["boot"]["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert first["boot"]["boot_count"] == 1
    assert first["boot"]["uptime_s"] > 0
    assert first["previous_run"]["ended"] == "unknown" and "first start" in first["previous_run"]["detail"]
    # the same boot again: the count stays (it counts boots, not starts)
    assert build_start_evidence(tmp_path)["boot"]["boot_count"] == 1
    # a boot the counter has not seen: +1
    boots = tmp_path / "headframe-boots.json"
    boots.write_text(json.dumps({"boot_id": "another-boot", "count": 16}))
    assert build_start_evidence(tmp_path)["boot"]["boot_count"] == 17


def test_clean_stop_then_sigkill_is_crash_on_the_same_boot(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path)
    agent, started = start_agent(tmp_path, cfg, "1")
    assert started["boot"]["boot_id"] == BOOT_ID and started["previous_run"]["ended"] == "unknown"
    assert run_state(tmp_path)["pid"] == agent.proc.pid and run_state(tmp_path)["clean"] is False
    assert agent.terminate() == 0
    assert run_state(tmp_path)["clean"] is True

    agent, started = start_agent(tmp_path, cfg, "2")
    prev = started["previous_run"]
    assert prev["ended"] == "clean", prev
    assert prev["last_seq"] >= 2 and prev["last_ts"]
    agent.kill()

    agent, started = start_agent(tmp_path, cfg, "3")
    assert started["previous_run"]["ended"] == "crash", started["previous_run"]
    assert "same boot id" in started["previous_run"]["detail"]
    assert started["boot"]["boot_count"] == 1
    assert agent.terminate() == 0


def test_another_boot_without_a_stop_record_is_unknown(tmp_path: Path) -> None:
    (tmp_path / RUN_STATE_NAME).write_text(
        json.dumps(
            {
                "boot_id": "00000000-dead-beef-0000-000000000000",
                "pid": 4242,
                "started": "2026-11-24T01:00:00.000Z",
                "power": {"state": "mains"},
                "clean": False,
                "stopping_reason": None,
            }
        )
    )
    agent, started = start_agent(tmp_path, agent_config(tmp_path), "1")
    prev = started["previous_run"]
    assert prev["ended"] == "unknown", prev
    assert "switched off or unplugged" in prev["detail"]
    assert prev["boot_id"] == "00000000-dead-beef-0000-000000000000"
    assert agent.terminate() == 0


def test_mains_state_recorded_then_sigkill_is_mains_failure(tmp_path: Path) -> None:
    """The run knew it was on battery; whatever happened after, the cause is the mains."""
    fake_pin = tmp_path / "FAKE-power-good-pin"  # a NAMED FAKE GPIO line: 1 = mains present
    fake_pin.write_text("1\n")
    cfg = agent_config(tmp_path, {"source": "gpio", "gpio": {"path": str(fake_pin)}, "poll": "0.1s"})
    agent, _ = start_agent(tmp_path, cfg, "1")
    wait_for(lambda: run_state(tmp_path)["power"]["state"] == "mains", 10, "power state mains")
    fake_pin.write_text("0\n")
    wait_for(lambda: run_state(tmp_path)["power"]["state"] == "on_battery", 10, "power state on_battery")
    agent.kill()
    fake_pin.write_text("1\n")
    agent, started = start_agent(tmp_path, cfg, "2")
    prev = started["previous_run"]
    assert prev["ended"] == "mains_failure", prev
    assert "without a clean stop" in prev["detail"]
    assert agent.terminate() == 0


def test_mark_stopped_records_systemds_watchdog_result(tmp_path: Path) -> None:
    """ExecStopPost=headframe mark-stopped --result=watchdog after systemd's SIGABRT."""
    cfg = agent_config(tmp_path)
    agent, _ = start_agent(tmp_path, cfg, "1")
    agent.signal(signal.SIGABRT)
    agent.proc.wait(10)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "mark-stopped",
            "-c",
            str(cfg),
            "--result=watchdog",
            "--exit-code=dumped",
            "--exit-status=ABRT",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert run_state(tmp_path)["service_result"] == "watchdog"
    agent, started = start_agent(tmp_path, cfg, "2")
    assert started["previous_run"]["ended"] == "watchdog", started["previous_run"]
    # an ordinary fatal signal, marked by systemd as such, is a crash
    agent.kill()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "mark-stopped",
            "--state-dir",
            str(tmp_path),
            "--result=signal",
            "--exit-code=killed",
            "--exit-status=KILL",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    agent, started = start_agent(tmp_path, cfg, "3")
    assert started["previous_run"]["ended"] == "crash" and "KILL" in started["previous_run"]["detail"]
    assert agent.terminate() == 0


def test_withheld_watchdog_pings_then_death_reads_as_watchdog() -> None:
    """Without ExecStopPost: the run state says the pings had stopped, and the process died on this boot."""
    prev = {
        "boot_id": BOOT_ID,
        "clean": False,
        "power": {"state": "mains"},
        "watchdog_withheld": {"why": "buffer writer stalled", "since": "2026-11-25T10:00:00.000Z"},
    }
    assert classify(prev, BOOT_ID)[0] == "watchdog"
    assert classify({**prev, "watchdog_withheld": None}, BOOT_ID)[0] == "crash"
    assert classify(prev, "another-boot")[0] == "unknown"
    assert classify({**prev, "clean": True, "stopping_reason": "SIGTERM"}, BOOT_ID)[0] == "clean"
    assert classify({**prev, "clean": True, "power": {"state": "low_battery"}}, "x")[0] == "mains_failure"


def test_mark_stopped_leaves_a_run_from_an_earlier_boot_alone(tmp_path: Path) -> None:
    old = {"boot_id": "an-earlier-boot", "pid": 1, "clean": False}
    (tmp_path / RUN_STATE_NAME).write_text(json.dumps(old))
    assert "earlier boot" in mark_stopped(tmp_path, "watchdog", "dumped", "ABRT")
    assert json.loads((tmp_path / RUN_STATE_NAME).read_text()) == old
    assert "nothing to mark" in mark_stopped(tmp_path / "empty", "success")
