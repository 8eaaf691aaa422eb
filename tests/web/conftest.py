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
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker, free_port
from tests.support.wait import wait_until

PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    agent: AgentProcess
    image: RegisterImage
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
    cfg = write_config(
        tmp_path / "c.yaml",
        broker.port,
        buffer_path=db,
        extra={"devices": [device], "web": {"enabled": True, "port": web_port, "password_file": str(password_file)}},
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
        yield Site(url, agent, image, password_file, cfg, broker)
    finally:
        if agent.proc.poll() is None:
            agent.terminate()
        plc.stop()
