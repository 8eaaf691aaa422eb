"""A synthetic record producer for spine tests and benchmarks (test tool, not a real device).

Enabled with ``HEADFRAME_EXTRA_PRODUCERS=tests.support.loadgen``; rate and sources come from
``LOADGEN_RATE`` (records/s) and ``LOADGEN_SOURCES``. Records carry a per-source counter so
order per source can be checked on the broker side.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from buffer.record import Kind, Record
from buffer.sink import RecordSink


class LoadGen:
    name = "loadgen"

    def __init__(self, sink: RecordSink, rate: float, sources: int) -> None:
        self.sink, self.rate, self.sources = sink, rate, sources
        self.counters = [0] * sources
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        tick = 0.01
        per_tick = max(1, int(self.rate * tick))
        while True:
            for _ in range(per_tick):
                i = sum(self.counters) % self.sources
                self.counters[i] += 1
                kind = Kind.ALARM if self.counters[i] % 50 == 0 else Kind.TELEMETRY
                self.sink.emit(Record(f"load-{i}", kind, {"n": self.counters[i], "t": time.time()}))
            await asyncio.sleep(tick)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "emitted": sum(self.counters)}


def build(settings: Any, sink: RecordSink) -> LoadGen:
    return LoadGen(sink, float(os.environ.get("LOADGEN_RATE", "500")), int(os.environ.get("LOADGEN_SOURCES", "3")))
