"""A garbage-answering device yields our line naming the device and the cause, not library noise."""

from __future__ import annotations

import time
from pathlib import Path

from tests.drivers.conftest import GarbageTcpServer
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port

_MBAP_UNKNOWN_FUNCTION = bytes([0, 1, 0, 0, 0, 3, 1, 0x55, 0])


def test_garbage_device_logs_one_line_naming_it_and_no_pymodbus_noise(tcp_slave, tmp_path: Path) -> None:
    _, good_port = tcp_slave
    http = GarbageTcpServer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    odd = GarbageTcpServer(_MBAP_UNKNOWN_FUNCTION)
    fast = {
        "groups": [{"name": "default", "interval": "0.2s"}],
        "timeout": "0.3s",
        "retries": 0,
        "backoff_after": 50,
        "points": [{"name": "x", "address": 0}],
    }
    cfg = write_config(
        tmp_path / "c.yaml",
        free_port(),
        buffer_path=tmp_path / "b.db",
        extra={
            "devices": [
                {"id": "meter-good", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": good_port, **fast},
                {"id": "web-not-modbus", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": http.port, **fast},
                {"id": "odd-gateway", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": odd.port, **fast},
            ]
        },
    )
    agent = AgentProcess(cfg)
    try:
        deadline = time.monotonic() + 20
        while (http.requests < 5 or odd.requests < 5) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        code = agent.terminate()
        http.stop()
        odd.stop()
    out = agent.output()
    assert code == 0, out
    assert http.requests >= 5 and odd.requests >= 5, out  # each garbage device was asked again and again
    for dev in ("web-not-modbus", "odd-gateway"):
        ours = [line for line in out.splitlines() if dev in line]
        assert len(ours) == 1, out  # one state change, one line, however many bad answers
        assert "starting -> offline (bad frame: answer did not parse" in ours[0]
    noise = [
        line
        for line in out.splitlines()
        if "pymodbus" in line
        or ">>>>>" in line
        or "0x48 0x54" in line
        or "data_received" in line
        or "No response received" in line
        or "Traceback" in line
    ]
    assert not noise, out
