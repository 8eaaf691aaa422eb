"""Real peers for driver tests: pymodbus servers over TCP and over socat pty pairs."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.support.broker import free_port, wait_port


@dataclass
class PtyPair:
    a: str
    b: str
    proc: subprocess.Popen[bytes]


def open_pty_pair() -> PtyPair:
    """Two connected pseudo-terminals made by socat (what a USB RS-485 adapter pair looks like)."""
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed: run scripts/setup.sh test")
    proc = subprocess.Popen(["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stderr=subprocess.PIPE)
    assert proc.stderr is not None
    paths: list[str] = []
    deadline = time.monotonic() + 5
    while len(paths) < 2 and time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        m = re.search(r"PTY is (\S+)", line)
        if m:
            paths.append(m.group(1))
    if len(paths) < 2:
        proc.kill()
        raise RuntimeError("socat did not create a pty pair")
    return PtyPair(paths[0], paths[1], proc)


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    pair = open_pty_pair()
    yield pair
    pair.proc.terminate()
    pair.proc.wait(5)


@pytest.fixture
def tcp_slave() -> Iterator[tuple[RegisterImage, int]]:
    image = RegisterImage()
    port = free_port()
    server = ServerThread({1: image}, tcp_port=port).start()
    wait_port(port)
    yield image, port
    server.stop()


class GarbageTcpServer:
    """A real TCP server on the Modbus port that answers every request with fixed bytes
    (a web server, a device speaking another protocol, a broken gateway), or with nothing."""

    def __init__(self, answer: bytes) -> None:
        import socketserver
        import threading

        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while self.request.recv(260):
                    outer.requests += 1
                    if outer.answer:
                        self.request.sendall(outer.answer)

        self.answer, self.requests = answer, 0
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
