"""An idle buffer writer sleeps until a record comes instead of waking every flush interval,
and a record emitted from any thread while it sleeps is committed at once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import buffer.boundary as boundary
from buffer import Kind, Record
from buffer.boundary import BufferService, Committed
from config import load_settings_text


def service(tmp_path: Path) -> BufferService:
    text = json.dumps({"gateway": {"site": "s", "id": "gw"}, "buffer": {"path": str(tmp_path / "buf.db")}})
    return BufferService(load_settings_text(text, base_dir=tmp_path))


async def until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


def test_an_idle_writer_is_woken_by_an_emit_from_another_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boundary, "HEARTBEAT_S", 60.0)  # without the wake-up the record would wait a minute
    svc = service(tmp_path)
    seen: list[float] = []

    def on_commit(committed: Sequence[Committed]) -> None:
        seen.extend(time.monotonic() for c in committed if c.record.source == "late")

    async def go() -> float:
        await svc.open()
        svc.subscribe(on_commit)
        stop = asyncio.Event()
        writer = asyncio.create_task(svc.run(stop))
        try:
            await until(lambda: svc._queue.idle, 5)  # nothing queued: the writer went to sleep
            flushed = svc.appended
            await asyncio.sleep(0.3)  # six flush intervals: an idle writer commits nothing meanwhile
            assert svc.appended == flushed
            emitted = time.monotonic()
            threading.Thread(target=svc.emit, args=(Record("late", Kind.EVENT, {"event": "x"}),)).start()
            await until(lambda: bool(seen), 5)
            return seen[0] - emitted
        finally:
            stop.set()
            await writer
            await svc.close()

    assert asyncio.run(go()) < 1.0
