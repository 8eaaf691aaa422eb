"""A real agent with the technician page on, a real Modbus TCP device and a real alarm to act on."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.drivers.conftest import open_pty_pair
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker, free_port
from tests.support.wait import wait_until

PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    agent: AgentProcess
    image: RegisterImage
    rtu: RegisterImage
    password_file: Path
    config: Path
    broker: MosquittoBroker


def set_password(path: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "web-password", "--stdin", str(path)],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Site]:
    image = RegisterImage(size=200)
    image.set_registers("holding", 0, [1234])
    plc_port, web_port = free_port(), free_port()
    plc = ServerThread({1: image}, tcp_port=plc_port).start()
    # an RS-485 line (socat pty pair) with two units: the agent polls unit 3, unit 7 is for the probe
    pair = open_pty_pair()
    rtu = RegisterImage(size=200)
    rtu.set_registers("holding", 10, [0x4148, 0x0000])  # 12.5 as float32 ABCD
    meters = ServerThread({3: rtu, 7: rtu}, serial_port=pair.b, baudrate=9600).start()
    password_file = tmp_path / "web.password"
    assert set_password(password_file, PASSWORD).returncode == 0
    db = tmp_path / "buf.db"
    db.write_bytes(b"this is not an SQLite database" * 100)  # -> a real buffer_corrupt alarm to acknowledge
    device = {
        "id": "plc-1",
        "protocol": "modbus_tcp",
        "host": "127.0.0.1",
        "port": plc_port,
        "groups": [{"name": "default", "interval": "200ms"}],
        "points": [{"name": "level", "address": 0, "type": "uint16", "unit": "m"}],
    }
    meter = {
        "id": "meter-3",
        "protocol": "modbus_rtu",
        "bus": "rs485",
        "unit": 3,
        "groups": [{"name": "default", "interval": "300ms"}],
        "points": [{"name": "p_total", "address": 10, "type": "float32", "unit": "kW"}],
    }
    cfg = write_config(
        tmp_path / "c.yaml",
        broker.port,
        buffer_path=db,
        extra={
            "buses": [{"name": "rs485", "port": pair.a, "baudrate": 9600, "timeout": "0.3s"}],
            "devices": [device, meter],
            "web": {"enabled": True, "port": web_port, "password_file": str(password_file)},
        },
    )
    agent = AgentProcess(cfg)
    url = f"http://127.0.0.1:{web_port}"

    def serving() -> bool:
        try:
            with urllib.request.urlopen(url + "/login", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until("the technician page to come up", serving, timeout=30)
        yield Site(url, agent, image, rtu, password_file, cfg, broker)
    finally:
        if agent.proc.poll() is None:
            agent.terminate()
        plc.stop()
        meters.stop()
        pair.proc.terminate()
        pair.proc.wait(5)


# the camera view's site (a real MJPEG camera); defined there, registered here for tests/web
from tests.web.camsite import cam_site  # noqa: E402, F401
