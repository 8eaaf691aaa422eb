"""The drain asks the buffer for records only when something was committed since it last looked
(each lease is a query on the buffer thread), and still delivers every new commit at once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from agent.uplink import Uplink
from buffer import Kind, Record
from buffer.boundary import BufferService
from config import load_settings_text
from tests.support.broker import MosquittoBroker


async def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def test_an_idle_drain_does_not_query_the_buffer_and_wakes_on_a_commit(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    doc = {
        "gateway": {"site": "s", "id": "gw"},
        "buffer": {"path": str(tmp_path / "buf.db"), "flush_interval": "20ms"},
        "uplink": {"host": broker.host, "port": broker.port, "reconnect_min": "0.1s", "reconnect_max": "0.5s"},
    }
    settings = load_settings_text(json.dumps(doc), base_dir=tmp_path)
    svc = BufferService(settings)
    leases: list[float] = []
    real_lease = svc.lease

    async def counting_lease(limit: int) -> Any:
        leases.append(time.monotonic())
        return await real_lease(limit)

    svc.lease = counting_lease  # type: ignore[method-assign]

    async def go() -> tuple[int, int]:
        await svc.open()
        stop = asyncio.Event()
        uplink = Uplink(settings, svc)
        tasks = [asyncio.create_task(svc.run(stop)), asyncio.create_task(uplink.run(stop))]
        try:
            svc.emit(Record("m1", Kind.EVENT, {"event": "first"}))
            await until(lambda: uplink.acked >= 1)
            await asyncio.sleep(0.3)  # the ack round settles
            before = len(leases)
            await asyncio.sleep(2.5)  # idle: nothing committed (the drain wakes every second)
            idle_leases = len(leases) - before
            svc.emit(Record("m1", Kind.EVENT, {"event": "second"}))
            await until(lambda: uplink.acked >= 2, 2.0)  # at once, not at the next 5 s recheck
            return idle_leases, uplink.acked
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await svc.close()

    try:
        idle_leases, acked = asyncio.run(go())
    finally:
        broker.stop()
    assert idle_leases == 0, f"{idle_leases} lease queries while nothing was committed"
    assert acked == 2
