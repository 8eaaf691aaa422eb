"""The HIL rig: scenario validation, the fault proxy over real sockets, and full scenarios."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from config import ConfigError
from hil import delivery
from hil.proxy import FaultProxy
from hil.runner import ScenarioRun, matches
from hil.scenario import load_scenario
from hil.sim.plc import ProcessModel
from hil.site import free_port

SCENARIOS = Path(__file__).resolve().parents[2] / "hil" / "scenarios"


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

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(1024), b"")], daemon=True).start()

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


def test_power_cut_scenario_end_to_end(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "power_cut.yaml")
    result = ScenarioRun(sc, tmp_path / "run", scale=0.6).run()
    assert result["passed"], result["checks"]
    assert result["messages"] > 20


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
