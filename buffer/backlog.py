"""Records drained from the emit queue but not yet committed: kept, retried, shed last.

When a commit fails the batch stays here and is retried with back-off. Memory is bounded:
above ``limit`` the oldest telemetry and health records are shed (alarms and events never);
whatever is shed is counted per reason and kind, and the next commit carries a chained
``records_dropped`` event (``seqs_assigned: false``) saying so.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable

from buffer.record import Kind, Record

SHEDDABLE = (Kind.TELEMETRY, Kind.HEALTH)


class Backlog:
    def __init__(self, limit: int = 100_000, backoff_min: float = 0.1, backoff_max: float = 5.0) -> None:
        self.limit = limit
        self._records: collections.deque[Record] = collections.deque()
        #: reason -> kind -> records lost before commit, not yet reported in a records_dropped event
        self.unreported: dict[str, dict[str, int]] = {}
        self._min, self._max = backoff_min, backoff_max
        self._delay = 0.0
        self._retry_at = 0.0

    def __len__(self) -> int:
        return len(self._records)

    def extend(self, records: Iterable[Record]) -> None:
        self._records.extend(records)

    def head(self, n: int) -> list[Record]:
        """The oldest ``n`` records (not removed: only a commit removes them)."""
        return [self._records[i] for i in range(min(n, len(self._records)))]

    def committed(self, n: int) -> None:
        for _ in range(n):
            self._records.popleft()
        self._delay = 0.0
        self._retry_at = 0.0

    def remove(self, victims: Iterable[Record]) -> None:
        ids = {id(r) for r in victims}
        self._records = collections.deque(r for r in self._records if id(r) not in ids)

    def shed(self, reason: str, keep: int = 0) -> int:
        """Drop the oldest telemetry/health until at most ``keep`` records remain; counted."""
        excess = len(self._records) - keep
        if excess <= 0:
            return 0
        kept: collections.deque[Record] = collections.deque()
        counts = self.unreported.setdefault(reason, {})
        shed = 0
        for rec in self._records:
            if shed < excess and rec.kind in SHEDDABLE:
                counts[rec.kind.value] = counts.get(rec.kind.value, 0) + 1
                shed += 1
            else:
                kept.append(rec)
        self._records = kept
        return shed

    def lost(self, reason: str, records: Iterable[Record]) -> None:
        """Count records that cannot be stored at all (e.g. a payload that is not JSON)."""
        counts = self.unreported.setdefault(reason, {})
        for rec in records:
            counts[rec.kind.value] = counts.get(rec.kind.value, 0) + 1

    def lost_counts(self, reason: str, by_kind: dict[str, int]) -> None:
        counts = self.unreported.setdefault(reason, {})
        for kind, n in by_kind.items():
            counts[kind] = counts.get(kind, 0) + n

    def counters(self) -> dict[str, int]:
        """Health counter names of the losses not yet written to the store."""
        return {f"dropped_{reason}_{kind}": n for reason, kinds in self.unreported.items() for kind, n in kinds.items()}

    # ------------------------------------------------------------- back-off
    def ready(self) -> bool:
        return time.monotonic() >= self._retry_at

    def failed(self) -> float:
        """A commit failed: the next attempt waits (doubling, capped). Returns the delay."""
        self._delay = min(self._max, max(self._min, self._delay * 2))
        self._retry_at = time.monotonic() + self._delay
        return self._delay
