"""sd_notify over a real datagram socket; watchdog pings stop when the agent stalls; SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from agent import daemon as daemon_mod
from agent.daemon import Daemon
from agent.sdnotify import Notifier
from config import load_settings
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector


class NotifySocket:
    """What systemd does: a datagram socket; we record every message with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def lines(self) -> list[str]:
        return [line for _, m in self.messages for line in m.split("\n")]

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG=1" in m]


def test_notify_protocol_of_a_real_agent_process(tmp_path: Path, broker) -> None:
    sock = NotifySocket(tmp_path / "notify.sock")
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db")
    agent = AgentProcess(cfg, env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "400000"})
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(sock.pings()) < 5:
            time.sleep(0.05)
    finally:
        code = agent.terminate()
    time.sleep(0.3)
    sock.close()
    lines = sock.lines()
    assert code == 0
    assert "READY=1" in lines
    assert f"MAINPID={agent.proc.pid}" in lines
    assert len(sock.pings()) >= 5
    assert any(line.startswith("STATUS=uplink ") for line in lines)
    assert "STOPPING=1" in lines
    ready_at = next(t for t, m in sock.messages if "READY=1" in m)
    assert all(t >= ready_at for t in sock.pings()), "no watchdog ping before READY"


def _run_daemon_in_thread(settings, sock_path: str, body) -> Daemon:
    """Run a Daemon on its own loop in a thread; ``body(daemon, loop)`` drives the test."""
    result: dict[str, Daemon] = {}

    def main() -> None:
        async def go() -> None:
            d = Daemon(Path("unused.yaml"), settings, Notifier(sock_path), install_signals=False)
            result["d"] = d
            await d.run()

        asyncio.run(go())

    t = threading.Thread(target=main, daemon=True)
    t.start()
    while "d" not in result:
        time.sleep(0.01)
    body(result["d"])
    t.join(20)
    assert not t.is_alive()
    return result["d"]


@pytest.mark.parametrize("stall", ["event_loop", "buffer_writer"])
def test_watchdog_pings_stop_while_a_part_is_stalled(tmp_path: Path, broker, monkeypatch, stall: str) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setattr(daemon_mod, "WRITER_STALL_S", 0.5)
    settings = load_settings(write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db"))
    sock = NotifySocket(tmp_path / "notify.sock")
    window: dict[str, float] = {}

    def body(d: Daemon) -> None:
        loop_ready = time.monotonic() + 10
        while len(sock.pings()) < 5 and time.monotonic() < loop_ready:
            time.sleep(0.02)
        while not hasattr(d, "loop"):
            time.sleep(0.01)
        target = d.loop  # the daemon's running loop
        window["start"] = time.monotonic()
        if stall == "event_loop":
            target.call_soon_threadsafe(time.sleep, 2.0)  # a producer that blocks the loop
        else:
            d.buffer._pool.submit(time.sleep, 2.0)  # a disk that hangs the buffer thread
        time.sleep(2.0)
        window["end"] = time.monotonic()
        time.sleep(1.0)  # recovery: pings resume
        target.call_soon_threadsafe(d.stop_event.set)

    _run_daemon_in_thread(settings, sock.path, body)
    sock.close()
    pings = sock.pings()
    assert any(t < window["start"] for t in pings), "pings before the stall"
    # the writer check allows 0.5 s of silence; from then until the stall ends: not one ping
    during = [t for t in pings if window["start"] + 0.8 < t < window["end"] - 0.1]
    assert during == [], f"{len(during)} watchdog ping(s) during a {stall} stall"
    assert any(t > window["end"] for t in pings), "pings resume after the stall"


def test_sighup_with_bad_config_keeps_old_one_and_good_one_applies(tmp_path: Path, broker) -> None:
    collector = Collector(broker, topics=["headframe/+/+/health/agent", "headframe/+/+/event/agent"]).start()
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=db, health_interval="5s")
    agent = AgentProcess(cfg)
    good_text = cfg.read_text()
    try:
        time.sleep(1.5)
        cfg.write_text(good_text.replace('"interval": "5s"', '"intervall": "5s"'))
        agent.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload rejected" not in agent.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "reload rejected, keeping the running config" in agent.output()
        assert "health.intervall" in agent.output()
        assert agent.proc.poll() is None, "a bad reload must not stop the agent"
        cfg.write_text(good_text.replace('"interval": "5s"', '"interval": "0.3s"'))
        agent.signal(signal.SIGHUP)
        reloaded = collector.wait_for(lambda ms: any(b'"config_reloaded"' in m.payload for m in ms))
        t0 = len([m for m in reloaded if m.topic.endswith("/health/agent")])
        # the new 0.3 s health interval is in effect: several health records within a few seconds
        collector.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/health/agent")]) >= t0 + 4, timeout=4)
    finally:
        assert agent.terminate() == 0
    events = [m.json()["payload"].get("event") for m in collector.snapshot() if m.topic.endswith("/event/agent")]
    assert "config_reload_rejected" in events and events.index("config_reload_rejected") < events.index("config_reloaded")
    collector.stop()
