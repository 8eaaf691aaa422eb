"""The one way records leave a camera worker: a bounded queue with a policy per kind.

Alarms and events are never dropped because the queue is full: the worker waits (back-pressure)
and keeps its heartbeat while it waits, so it is not taken for hung; meanwhile its reader thread
keeps only the newest frame, so frames are what is lost, and analysis resumes on a fresh one.
Telemetry is dropped once the queue is half full (it is superseded by the next sample and must
not take the room alarms need); every record produced and every one dropped is counted per kind
in shared memory, so the parent's health says what was lost even if the worker dies.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

from buffer.record import Kind, Record

KINDS = tuple(Kind)
#: kinds that are superseded by the next sample and may be dropped under load
DROPPABLE = frozenset({Kind.TELEMETRY, Kind.HEALTH})


class RecordChannel:
    """Created in the parent, handed to the spawned worker; ``send`` there, ``receive`` here."""

    def __init__(self, ctx: Any, size: int = 256) -> None:
        self.size = size
        self.queue: Any = ctx.Queue(maxsize=size)
        self.produced: Any = ctx.Array("q", len(KINDS), lock=False)  # written by the worker only
        self.dropped: Any = ctx.Array("q", len(KINDS), lock=False)
        self.waited: Any = ctx.Value("d", 0.0, lock=False)  # seconds the worker spent on back-pressure

    # -- worker side -------------------------------------------------------------------------

    def send(self, record: Record, alive: Callable[[], None] = lambda: None) -> bool:
        """Queue one record; False if it was telemetry and dropped. ``alive`` is called while waiting."""
        i = KINDS.index(record.kind)
        self.produced[i] += 1
        if record.kind in DROPPABLE:
            if self._half_full():
                self.dropped[i] += 1
                return False
            try:
                self.queue.put_nowait(record)
            except queue.Full:
                self.dropped[i] += 1
                return False
            return True
        started = time.monotonic()
        while True:
            try:
                self.queue.put(record, timeout=0.5)
                break
            except queue.Full:
                alive()
        waited = time.monotonic() - started
        if waited > 0.05:
            self.waited.value += waited
        return True

    def _half_full(self) -> bool:
        try:
            return bool(self.queue.qsize() >= self.size // 2)
        except NotImplementedError:  # macOS has no sem_getvalue; the put_nowait below still bounds it
            return False

    # -- parent side -------------------------------------------------------------------------

    def receive(self, limit: int) -> Iterator[Record]:
        """Up to ``limit`` queued records, without waiting."""
        for _ in range(limit):
            try:
                yield self.queue.get_nowait()
            except (queue.Empty, EOFError, OSError):
                return

    def stats(self) -> dict[str, Any]:
        """Counts since the camera was set up (across worker restarts), for health."""
        return {
            "produced": {k.value: int(self.produced[i]) for i, k in enumerate(KINDS) if self.produced[i]},
            "dropped": {k.value: int(self.dropped[i]) for i, k in enumerate(KINDS) if self.dropped[i]},
            "backpressure_s": round(float(self.waited.value), 1),
        }
