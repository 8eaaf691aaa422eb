"""The edges of a capture window: seqs a live capture could not see, told apart from removals.

The gateway sends each lease in priority order (alarms before telemetry before health), so around
the moment a capture starts or stops, a record of one kind may have left just before the window
while a lower seq of a lower-priority kind left just inside it. Such a record is missing from the
capture without anything being wrong. It can only be at the very start or end of the capture: a
missing run counts as an edge when every record received on that side of it arrived within
``EDGE_S`` of the capture's first (or last) message, and it lies within one lease (``EDGE_SEQS``)
of the capture's first (or last) seq.

Only a capture this ``verify`` run made itself is given to a Window: the ``received`` field of a
file is whatever its holder wrote there, so trusting it would let anyone turn a deletion into an
"edge". Even then an edge seq is reported as not proven, never as verified.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import datetime
from typing import Any

#: A lease goes out as one burst; two seconds covers it on a loaded gateway and broker.
EDGE_S = 2.0
#: The most records one lease sends (``LEASE_MAX`` in agent/uplink/drain.py): an edge can hide no more than that.
EDGE_SEQS = 2000


def _epoch(text: Any) -> float | None:
    """ISO time, or epoch seconds / milliseconds as some consumers log it."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text / 1000.0 if text > 1e12 else float(text)
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class Window:
    """Receive times per seq; ``edge(lo, hi)`` says whether a missing run lies at an edge."""

    def __init__(self, received: dict[int, Any]) -> None:
        times = {seq: _epoch(r) for seq, r in received.items()}
        self.usable = bool(times) and all(t is not None for t in times.values())
        if not self.usable:
            return
        self.seqs = sorted(times)
        ordered = [float(times[s]) for s in self.seqs]  # type: ignore[arg-type]
        self.first, self.last = min(ordered), max(ordered)
        self.latest_before = list(itertools.accumulate(ordered, max))  # by position, from the start
        self.earliest_after = list(itertools.accumulate(reversed(ordered), min))[::-1]

    def edge(self, lo: int, hi: int) -> str | None:
        """'start', 'end' or None for the missing seqs lo..hi."""
        if not self.usable or self.last - self.first <= EDGE_S:
            return None
        i = bisect.bisect_left(self.seqs, lo)  # seqs[:i] are below the run
        j = bisect.bisect_right(self.seqs, hi)  # seqs[j:] are above it
        if i > 0 and self.latest_before[i - 1] <= self.first + EDGE_S and hi < self.seqs[0] + EDGE_SEQS:
            return "start"
        if j < len(self.seqs) and self.earliest_after[j] >= self.last - EDGE_S and lo > self.seqs[-1] - EDGE_SEQS:
            return "end"
        return None
