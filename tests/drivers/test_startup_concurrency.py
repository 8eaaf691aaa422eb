"""Start-up at scale: every device connects on its own, a bounded number at a time.

Real pymodbus TCP servers for the live devices; the dead ones are real listening sockets whose
accept queue is full, so the kernel drops their SYNs and a connect hangs until the client gives
up (a device behind a dead switch). Ordering and state, never wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from buffer.record import Kind
from buffer.sink import ListSink
from config import load_settings_text
from drivers.runtime import Drivers
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.support.broker import free_port, wait_port


class Blackhole:
    """A port on which a TCP connect hangs: listen(0) and its queue filled by us."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
        except TimeoutError:
            pass
        else:
            raise RuntimeError("the blackhole accepted a connection: the kernel did not drop the SYN")
        finally:
            probe.close()

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


@pytest.fixture
def live_ports() -> Iterator[list[int]]:
    ports, servers = [], []
    for _ in range(4):
        port = free_port()
        servers.append(ServerThread({1: RegisterImage(size=20)}, tcp_port=port).start())
        wait_port(port)
        ports.append(port)
    yield ports
    for s in servers:
        s.stop()


def _config(dead: list[int], live: list[int], dead_timeout: str) -> str:
    lines = ["gateway: {site: s, id: g}", "devices:"]
    for i, port in enumerate(dead):  # first in the file: a sequential start would wait for them
        lines.append(
            f"  - {{id: dead{i}, protocol: modbus_tcp, host: 127.0.0.1, port: {port}, timeout: {dead_timeout}, retries: 0,"
            " points: [{name: a, address: 0}]}"
        )
    for i, port in enumerate(live):
        lines.append(
            f"  - {{id: live{i}, protocol: modbus_tcp, host: 127.0.0.1, port: {port}, timeout: 1s,"
            " points: [{name: a, address: 0}, {name: b, address: 5}]}"
        )
    return "\n".join(lines) + "\n"


async def _until(what: str, cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def _first_reports(sink: ListSink) -> list[str]:
    """Sources in the order of their first record (telemetry or device_state event)."""
    seen: list[str] = []
    for r in sink.records:
        if r.source not in seen and (r.kind is Kind.TELEMETRY or r.payload.get("event") == "device_state"):
            seen.append(r.source)
    return seen


def test_a_dead_device_does_not_hold_up_the_others(live_ports: list[int]) -> None:
    """The dead device is first in the file and its connect hangs for 30 s; every live device
    must have reported good values while that connect is still pending."""
    hole = Blackhole()

    async def go() -> None:
        sink = ListSink()
        drivers = Drivers(load_settings_text(_config([hole.port], live_ports, "30s")), sink, connect_concurrency=2)
        dead = drivers.pollers[0]
        await drivers.start()
        try:
            live = {f"live{i}" for i in range(len(live_ports))}
            await _until(
                "every live device's first telemetry",
                lambda: live <= {r.source for r in sink.records if r.kind is Kind.TELEMETRY},
                20,
            )
            assert dead.health.state == "starting", "the dead device's connect must still be pending"
            assert dead.health.requests == 1 and dead.health.errors == 0
            for r in sink.records:
                if r.kind is Kind.TELEMETRY:
                    assert all(v["q"] == "good" for v in r.payload["values"].values()), r
        finally:
            await drivers.stop()

    try:
        asyncio.run(go())
    finally:
        hole.close()


def test_connects_in_flight_are_bounded(live_ports: list[int]) -> None:
    """As many dead devices as connect slots: the live devices connect only once a dead
    device's connect has timed out and given its slot back."""
    holes = [Blackhole(), Blackhole()]

    async def go() -> None:
        sink = ListSink()
        drivers = Drivers(load_settings_text(_config([h.port for h in holes], live_ports, "1s")), sink, connect_concurrency=2)
        await drivers.start()
        try:
            await _until("a first record from every device", lambda: len(_first_reports(sink)) == 2 + len(live_ports), 30)
            order = _first_reports(sink)
            assert set(order[:2]) == {"dead0", "dead1"}, order
        finally:
            await drivers.stop()

    try:
        asyncio.run(go())
    finally:
        for h in holes:
            h.close()
