"""Technician CLI against real peers; errors a technician can act on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hil.sim.dlt645_meter import MeterSimulator
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.support.agentproc import REPO
from tests.support.broker import free_port


def hf(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_probe_modbus_tcp_prints_raw_and_decoded(tcp_slave) -> None:
    image, port = tcp_slave
    image.set_float("holding", 100, 230.5)
    image.set_float("holding", 102, -1.25)
    res = hf("probe", "modbus-tcp", f"127.0.0.1:{port}", "--unit", "1", "--read", "100:2", "--type", "float32")
    assert res.returncode == 0, res.stderr
    assert "raw: 4366 8000 BFA0 0000" in res.stdout
    assert "holding[100] float32 ABCD = 230.5" in res.stdout and "holding[102] float32 ABCD = -1.25" in res.stdout


def test_probe_exception_and_unreachable_in_words(tcp_slave) -> None:
    _, port = tcp_slave
    res = hf("probe", "modbus-tcp", f"127.0.0.1:{port}", "--read", "9999:5")
    assert res.returncode == 2 and "illegal data address" in res.stderr
    res = hf("probe", "modbus-tcp", f"127.0.0.1:{free_port()}", "--read", "0", "--timeout", "0.3")
    assert res.returncode == 2 and "cannot connect" in res.stderr


def test_probe_rtu_missing_port_and_timeout_hints(pty_pair) -> None:
    res = hf("probe", "modbus-rtu", "/dev/ttyNOPE0", "--read", "0")
    assert res.returncode == 2 and "does not exist" in res.stderr and "/dev/serial/by-id" in res.stderr
    res = hf("probe", "modbus-rtu", pty_pair.a, "--read", "0", "--timeout", "0.2")  # nobody on the line
    assert res.returncode == 2 and "check wiring" in res.stderr and "unit id" in res.stderr


def test_scan_finds_the_responding_units(pty_pair) -> None:
    # A pty carries bytes whatever the baud rate and parity, so this proves the unit search,
    # the progress and the time bound; telling line settings apart needs a real UART (HIL rig).
    server = ServerThread({3: RegisterImage(), 5: RegisterImage()}, serial_port=pty_pair.b).start()
    try:
        res = hf(
            "scan", "modbus-rtu", pty_pair.a, "--units", "1-6", "--bauds", "9600,19200", "--parities", "N,E", "--timeout", "0.1"
        )
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    assert "unit 3 at 9600 8N1" in res.stdout and "unit 5 at 9600 8N1" in res.stdout
    assert "unit 1 " not in res.stdout
    assert "9600 8N1 unit" in res.stderr  # progress was shown


def test_scan_stops_at_its_time_bound(pty_pair) -> None:
    res = hf("scan", "modbus-rtu", pty_pair.a, "--units", "1-247", "--timeout", "0.1", "--max-time", "1")
    assert res.returncode == 1 and "time bound of 1.0s reached" in res.stderr


def test_probe_dlt645_discover_and_read(pty_pair) -> None:
    meter = MeterSimulator(pty_pair.b, address="202611240001").start()
    try:
        res = hf("probe", "dlt645", pty_pair.a, "--discover", "--id", "00010000", "--id", "02010100", "--id", "04000401")
    finally:
        meter.stop()
    assert "meter address: 202611240001" in res.stdout
    assert "00010000 energy forward active total = 1200.0 kWh" in res.stdout
    assert "02010100 voltage A = 229.8 V" in res.stdout
    assert "04000401: meter error 0x02: no requested data" in res.stderr


def test_points_shows_values_with_quality(tcp_slave, tmp_path: Path) -> None:
    image, port = tcp_slave
    image.set_float("input", 52, 45000.0)  # SDM630 total power in W
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
gateway: {{site: s, id: g}}
devices:
  - id: meter-main
    protocol: modbus_tcp
    host: 127.0.0.1
    port: {port}
    profile: eastron_sdm630
""")
    res = hf("points", "-c", str(cfg), "meter-main", "--once")
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("p_total"))
    assert "45" in line and "kW" in line and "good" in line
    bad = next(x for x in res.stdout.splitlines() if x.startswith("energy_total"))
    assert "good" in bad  # address 342 exists in the simulator's map
    res = hf("points", "-c", str(cfg), "nope", "--once")
    assert res.returncode == 1 and "meter-main" in res.stderr


def test_probe_dlt645_discover_when_the_port_fails_mid_read_says_so_without_a_traceback(pty_pair) -> None:
    import serial

    peer = serial.Serial(pty_pair.b, 2400, parity="E", timeout=0.2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "probe", "dlt645", pty_pair.a, "--discover", "--timeout", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while not seen.endswith(b"\x16") and time.monotonic() < deadline:
            seen += peer.read(64)
        assert seen.endswith(b"\x16"), seen  # the broadcast request is on the line: the CLI waits for an answer
        pty_pair.proc.kill()  # the adapter goes away mid-read
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        peer.close()
    assert proc.returncode == 2, (out, err)
    assert "Traceback" not in err, err
    assert f"serial port {pty_pair.a}" in err and "check the USB adapter" in err, err
