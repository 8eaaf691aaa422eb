"""Synthetic ``line_crossing`` events, as a camera worker reports them (test tool, not a camera).

Enabled with ``HEADFRAME_EXTRA_PRODUCERS=tests.support.crossinggen``. The events go through the
agent's real record path (``RecordSink.emit`` -> buffer -> rules engine), in vision/pipeline.py's
payload shape. ``CROSSINGS_CAMERAS`` (comma-separated, default ``cam-a``) take turns;
``CROSSINGS_LINE`` (default ``gate``); ``CROSSINGS_PATTERN`` the directions in turn (default
``in,in,out``); ``CROSSINGS_RATE`` events/s (default 100); ``CROSSINGS_TOTAL`` stops after that
many (default 0: never).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from buffer.record import Kind, Record
from buffer.sink import RecordSink


class CrossingGen:
    name = "crossinggen"

    def __init__(self, sink: RecordSink, cameras: list[str], line: str, pattern: list[str], rate: float, total: int) -> None:
        self.sink, self.cameras, self.line, self.pattern, self.rate, self.total = sink, cameras, line, pattern, rate, total
        self.emitted = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        tick = 0.01
        per_tick = max(1, int(self.rate * tick))
        while not self.total or self.emitted < self.total:
            for _ in range(per_tick):
                if self.total and self.emitted >= self.total:
                    break
                cam = self.cameras[self.emitted % len(self.cameras)]
                direction = self.pattern[self.emitted % len(self.pattern)]
                self.emitted += 1
                payload = {"event": "line_crossing", "line": self.line, "direction": direction, "class": "person"}
                self.sink.emit(Record(cam, Kind.EVENT, {**payload, "track": self.emitted}, ts=time.time()))
            await asyncio.sleep(tick if per_tick > 1 else 1.0 / self.rate)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "emitted": self.emitted}


def build(settings: Any, sink: RecordSink) -> CrossingGen:
    env = os.environ.get
    return CrossingGen(
        sink,
        [c for c in env("CROSSINGS_CAMERAS", "cam-a").split(",") if c],
        env("CROSSINGS_LINE", "gate"),
        env("CROSSINGS_PATTERN", "in,in,out").split(","),
        float(env("CROSSINGS_RATE", "100")),
        int(env("CROSSINGS_TOTAL", "0")),
    )
