"""The producer-facing hand-off: a thread-safe, non-blocking, bounded queue of records."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from buffer.record import Kind, Record

_SHEDDABLE = (Kind.TELEMETRY, Kind.HEALTH)


class EmitQueue:
    """Producers emit here from any thread; the writer drains it in batches.

    The queue is bounded so a runaway producer cannot exhaust memory while the disk is
    stalled; overflow drops the newest telemetry/health first and is counted (alarms and
    events are always kept).
    """

    def __init__(self, clock_synced: Callable[[], bool | None], limit: int = 200_000) -> None:
        self._queue: collections.deque[Record] = collections.deque()
        self._lock = threading.Lock()
        self._clock_synced = clock_synced
        self._synced: bool | None = clock_synced()
        self.limit = limit
        self.overflow = 0
        self._shed: dict[str, int] = {}
        #: set by an idle writer: the next emit calls ``on_idle_emit`` (thread-safe) to wake it
        self.idle = False
        self.on_idle_emit: Callable[[], None] | None = None

    @property
    def synced(self) -> bool | None:
        return self._synced

    def refresh_clock(self) -> None:
        """Re-read clock sync state (called periodically; adjtimex per record would be wasteful)."""
        self._synced = self._clock_synced()

    def emit(self, record: Record) -> None:
        if record.clock_synced is None:
            record.clock_synced = bool(self._synced)
        with self._lock:
            if len(self._queue) >= self.limit and record.kind in _SHEDDABLE:
                self.overflow += 1
                self._shed[record.kind.value] = self._shed.get(record.kind.value, 0) + 1
                return
            self._queue.append(record)
        if self.idle and (wake := self.on_idle_emit) is not None:
            self.idle = False  # one wake-up per idle period
            wake()

    def drain(self, limit: int = 10_000) -> list[Record]:
        with self._lock:
            n = min(limit, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def take_shed(self) -> dict[str, int]:
        """Records refused on overflow since the last call, per kind (for a records_dropped event)."""
        with self._lock:
            shed, self._shed = self._shed, {}
        return shed

    def __len__(self) -> int:
        return len(self._queue)
