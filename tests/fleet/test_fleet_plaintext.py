"""``headframe fleet`` never sends a password in clear off loopback unless told ``--insecure``.

A real TCP listener on this machine's non-loopback address records every byte that reaches it:
refused means not one byte (the password cannot have left); ``--insecure`` means it arrives.
On loopback a real mosquitto with a password file accepts it as before."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.support.agentproc import REPO
from tests.support.broker import MosquittoBroker

SECRET = "fl33t-pw-in-clear?"


def off_loopback_ipv4() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None


class Listener:
    """Accepts TCP connections and keeps every byte received."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(3)
            try:
                while chunk := conn.recv(4096):
                    self.received += chunk
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.sock.close()


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "agent.cli", "fleet", *args, "--once", "--wait", "0.5"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.skipif(off_loopback_ipv4() is None, reason="needs a non-loopback IPv4 address on this machine")
def test_password_is_refused_over_plain_tcp_off_loopback(tmp_path: Path) -> None:
    host = off_loopback_ipv4()
    assert host is not None
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    listener = Listener(host)
    try:
        res = fleet("--broker", f"{host}:{listener.port}", "--username", "ops", "--password-file", str(pw))
        assert res.returncode == 2
        assert f"would send the password to broker {host} in clear text" in res.stderr
        assert "--ca-file" in res.stderr and "--insecure" in res.stderr
        assert SECRET not in res.stderr + res.stdout
        assert listener.connections == 0 and bytes(listener.received) == b""

        # told so explicitly, it goes (and the password does cross in clear: that is what --insecure means)
        res = fleet("--broker", f"{host}:{listener.port}", "--username", "ops", "--password-file", str(pw), "--insecure")
        assert res.returncode == 0, res.stderr
        assert listener.connections == 1 and SECRET.encode() in bytes(listener.received)
    finally:
        listener.close()


def test_loopback_broker_takes_the_password_without_tls(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b", users={"ops": SECRET}).start()
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    for host in ("127.0.0.1", "localhost"):
        res = fleet("--broker", f"{host}:{broker.port}", "--username", "ops", "--password-file", str(pw))
        assert res.returncode == 0 and "in clear text" not in res.stderr, res.stderr
    missing = fleet("--broker", f"127.0.0.1:{broker.port}", "--username", "ops", "--password-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and f"--password-file {tmp_path / 'nope'}: No such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    broker.stop()
