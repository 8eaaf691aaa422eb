"""The HIL rig: scenario validation, the fault proxy over real sockets, and one full scenario."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from config import ConfigError
from hil.proxy import FaultProxy
from hil.runner import ScenarioRun
from hil.scenario import load_scenario
from hil.sim.plc import ProcessModel
from hil.site import free_port

SCENARIOS = Path(__file__).resolve().parents[2] / "hil" / "scenarios"


def test_shipped_scenarios_are_valid_and_cover_the_faults() -> None:
    names = {p.stem: load_scenario(p) for p in SCENARIOS.glob("*.yaml")}
    assert len(names) >= 8
    actions = {s.action for sc in names.values() for s in sc.steps}
    assert {"proxy", "camera", "device", "serial_noise", "kill_agent", "start_agent"} <= actions
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
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(1024), b"")],
                             daemon=True).start()

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
