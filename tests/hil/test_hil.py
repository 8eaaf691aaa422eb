"""The HIL rig: scenario validation, the fault proxy over real sockets, and full scenarios."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from hil import delivery
from hil.proxy import FaultProxy
from hil.runner import ScenarioRun, matches
from hil.scenario import load_scenario
from hil.sim.plc import ProcessModel
from hil.site import free_port

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "hil" / "scenarios"

#: every fault scenario, run in the suite (the site-rule ones are tests/hil/test_rule_scenarios.py's;
#: unplugged_while_site_runs and mains_failure_with_ups have their own tests below)
FAULTS = [
    # longest first, so the pool's last slot is not a long one started late
    "camera_lost",
    "camera_covered",
    "camera_frozen",
    "disk_full",
    "power_cut",
    "serial_noise",
    "broker_blackhole",
    "link_drop_and_delay",
    "broker_flap",
    "clock_unsynced",
    "device_dies",
]
#: scenarios at once: 2 cores; each scenario is a site + an agent (+ camera workers)
JOBS = 3


def test_shipped_scenarios_are_valid_and_cover_the_faults() -> None:
    names = {p.stem: load_scenario(p) for p in SCENARIOS.glob("*.yaml")}
    assert len(names) >= 8
    actions = {s.action for sc in names.values() for s in sc.steps}
    assert {"proxy", "camera", "device", "serial_noise", "kill_agent", "start_agent", "ups", "wait_agent_exit"} <= actions
    assert any(sc.buffer_tmpfs for sc in names.values())  # a real full disk


def test_scenario_error_names_the_step_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {action: wait, seconds: 1}\n  - {action: proxy, mode: blackhol}\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(bad)
    msg = str(info.value)
    assert "bad.yaml:4:" in msg and "step 2 (proxy)" in msg and "blackhole" in msg
    bad.write_text("name: x\nsteps:\n  - {action: teleport}\n")
    with pytest.raises(ConfigError, match="step 1 \\(teleport\\)"):
        load_scenario(bad)


def echo_server() -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def echo(conn: socket.socket) -> None:
        try:
            for data in iter(lambda: conn.recv(1024), b""):
                conn.sendall(data)
        except OSError:  # the proxy resets connections on purpose (drop, a sender lost in a black hole)
            pass

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def roundtrip(port: int, timeout: float = 1.0) -> bytes | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"ping")
            return s.recv(16) or None
    except OSError:
        return None


def test_proxy_modes_over_real_sockets() -> None:
    proxy = FaultProxy(free_port(), echo_server()).start()
    try:
        assert roundtrip(proxy.listen_port) == b"ping"
        proxy.set_mode("drop")
        assert roundtrip(proxy.listen_port) is None
        proxy.set_mode("blackhole")
        t0 = time.monotonic()
        assert roundtrip(proxy.listen_port, timeout=0.5) is None and time.monotonic() - t0 >= 0.45  # silence, no reset
        proxy.set_mode("delay", delay_s=0.3)
        assert roundtrip(proxy.listen_port) == b"ping"
        proxy.set_mode("pass")
        assert roundtrip(proxy.listen_port) == b"ping"
    finally:
        proxy.stop()


def test_process_model_power_follows_the_plant() -> None:
    model = ProcessModel()
    model.mode = "stopped"
    assert model.power_kw() < 70  # drainage pumps and standby only: below the site's off threshold
    model.mode = "secretly_running"
    assert not model.state()["fan_running"] and model.state()["belt_running"]
    assert model.power_kw() > 70  # belt alone keeps it above the off threshold


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """All fault scenarios through ``python -m hil run --jobs``: each in its own process with its
    own site, ports and directories, JOBS at a time; every step waits on a condition (wait_for),
    so a loaded machine makes a run slower, not wrong."""
    work = tmp_path_factory.mktemp("hil-faults")
    report = work / "report.json"
    cmd = [sys.executable, "-m", "hil", "run", *(str(SCENARIOS / f"{n}.yaml") for n in FAULTS)]
    cmd += ["--jobs", str(JOBS), "--json", str(report), "--workdir", str(work)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    results = {r["scenario"]: r for r in json.loads(report.read_text())} if report.exists() else {}
    assert results, f"no report (exit {proc.returncode}): {proc.stdout[-3000:]} {proc.stderr[-3000:]}"
    times = ", ".join(f"{n} {results[n]['seconds']} s" for n in FAULTS if n in results)
    print(f"\nHIL fault scenarios: {took:.0f} s wall with {JOBS} at once ({times})")
    return results


@pytest.mark.parametrize("name", FAULTS)
def test_fault_scenario(fault_runs: dict[str, dict[str, Any]], name: str) -> None:
    """Each fault scenario asserts its precise outcome (hil/scenarios/NAME.yaml, docs/hil.md)."""
    result = fault_runs.get(name)
    assert result is not None, f"{name} did not run"
    failed = {k: v["detail"] for k, v in result["checks"].items() if not v["ok"]}
    assert result["passed"] and not failed, f"{name}: {failed} (log: {result.get('log')}, steps: {result.get('steps')})"
    assert result["messages"] > 10


def test_expectations_count_and_window_by_step() -> None:
    """The expectation language the fault scenarios use: counts, step windows, operators, facts."""
    from hil.expect import judge

    def rec(seq: int, ts: str, **payload: Any) -> dict[str, Any]:
        return {"seq": seq, "kind": "event", "source": "plc", "ts": ts, "payload": payload}

    msgs = [
        rec(1, "2026-01-01T00:00:01.000Z", state="ok", values={"a": {"q": "good"}}),
        rec(2, "2026-01-01T00:00:05.000Z", state="backoff", values={"a": {"q": "good"}, "b": {"q": "bad"}}, n=3),
        rec(2, "2026-01-01T00:00:05.000Z", state="backoff", values={"a": {"q": "good"}, "b": {"q": "bad"}}, n=3),
        rec(3, "2026-01-01T00:00:09.000Z", state="ok", kind="x"),
    ]
    t = {1: 1767225600.0 + 3, 2: 1767225600.0 + 8}  # step 1 at 00:00:03, step 2 at 00:00:08

    def ok(want: dict[str, Any], absent: bool = False) -> bool:
        return bool(judge(msgs, want, t, {"injected": 3}, absent=absent)["ok"])

    assert ok({"state": "backoff", "count": 1})  # a redelivered seq counts once
    assert not ok({"state": "ok", "count": 1}) and ok({"state": "ok", "count": 2})
    assert ok({"state": "ok", "before_step": 1, "count": 1}) and ok({"state": "ok", "after_step": 1, "count": 1})
    assert not ok({"state": "backoff", "before_step": 1})  # it happened after step 1, not before
    assert ok({"state": "backoff", "after_step": 1, "before_step": 2, "count": 1})
    assert ok({"values.*.q": "bad"}) and ok({"values.*.q": {"$ne": "good"}, "count": 1})
    assert ok({"n": "${injected}"}) and not ok({"n": {"$gt": "${injected}"}})
    assert ok({"payload": {"kind": "x"}, "count": 1}) and ok({"kind": "event", "min": 3, "max": 3})
    assert ok({"state": {"$in": ["degraded", "offline"]}}, absent=True)
    assert not judge(msgs, {"n": "${nope}"}, t, {})["ok"]  # an unknown fact is an error, not a pass


def test_an_expectation_window_must_name_a_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {action: wait, seconds: 1}\nexpect:\n  records:\n    - {kind: alarm, after_step: 2}\n")
    with pytest.raises(ConfigError, match=r"after_step must be a step number 1\.\.1"):
        load_scenario(bad)
    bad.write_text("name: x\nsteps:\n  - {action: fill_disk}\n")
    with pytest.raises(ConfigError, match="buffer_tmpfs"):
        load_scenario(bad)


def test_dotted_expectation_keys_reach_into_the_payload() -> None:
    msg = {"kind": "event", "source": "agent", "payload": {"event": "agent_started", "previous_run": {"ended": "mains_failure"}}}
    assert matches(msg, {"kind": "event", "previous_run.ended": "mains_failure"})
    assert not matches(msg, {"previous_run.ended": "clean"})
    assert not matches(msg, {"previous_run.ended.deeper": "mains_failure"})
    assert not matches(msg, {"boot.boot_id": None})  # absent is not "equal to None"


def test_a_ups_step_needs_a_site_with_a_ups(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {action: ups, status: OB}\n")
    with pytest.raises(ConfigError, match="ups: true"):
        load_scenario(bad)
    bad.write_text("name: x\nups: true\nsteps:\n  - {action: ups, status: LB}\n")
    with pytest.raises(ConfigError, match="step 1 \\(ups\\)"):
        load_scenario(bad)


def test_mains_failure_with_ups_end_to_end(tmp_path: Path) -> None:
    """Real upsd + dummy-ups: OB, then OB LB; the agent stops by itself and the next start explains it."""
    sc = load_scenario(SCENARIOS / "mains_failure_with_ups.yaml")
    run = ScenarioRun(sc, tmp_path / "run", scale=0.6)
    result = run.run()
    assert result["passed"], result["checks"]
    # the delivery checks are the verifier's: a record taken out, or one altered, is caught
    # (the buffer has moved on since: the clean stop after the run committed one more record)
    db = tmp_path / "run" / "buffer.db"
    msgs = sorted({m["seq"]: m for m in run.messages}.values(), key=lambda m: m["seq"])
    middle = len(msgs) // 2
    seq = msgs[middle]["seq"]
    assert not any(f"seq {seq} " in t for t in delivery.check(msgs, db).missing)
    assert any(f"missing: seq {seq} " in t for t in delivery.check(msgs[:middle] + msgs[middle + 1 :], db).missing)
    altered = [dict(m) for m in msgs]
    altered[middle]["ts"] = "2000-01-01T00:00:00.000Z"
    assert any(t.startswith(f"seq {seq}: ") for t in delivery.check(altered, db).integrity)


def test_unplugged_while_site_runs_end_to_end(tmp_path: Path) -> None:
    """SIGKILL + simulated reboot: the seqs skipped after it are explained (power_loss), not missing."""
    sc = load_scenario(SCENARIOS / "unplugged_while_site_runs.yaml")
    # full scale (~56 s): at 0.6 the kill comes 4.8 s after the start, before the continuity state
    # (saved every 5 s) holds a meter reading, so the gap has no energy "before" and no dark alarm
    result = ScenarioRun(sc, tmp_path / "run").run()
    assert result["passed"], result["checks"]
    explained = re.search(r"(\d+) explained by records_dropped", result["checks"]["all_delivered"]["detail"])
    assert explained and int(explained[1]) > 0  # the reboot's seq skip was there, and was explained
