"""Request latency per device as a cumulative histogram: what Prometheus and the fleet read from health."""

from __future__ import annotations

import bisect
from typing import Any

#: Upper bounds (seconds). From a LAN Modbus TCP answer (~ms) to an RS-485 timeout at 9600 baud (~1-3 s).
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LatencyHistogram:
    """Counts per bucket plus the sum; O(log buckets) per request, a few hundred bytes per device."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds

    def as_dict(self) -> dict[str, Any]:
        """``le`` bounds, ``cumulative`` counts per bound (the last is +Inf, equal to ``count``), ``sum`` in s."""
        cumulative, running = [], 0
        for n in self.counts:
            running += n
            cumulative.append(running)
        return {"le": list(self.buckets), "cumulative": cumulative, "count": running, "sum": round(self.sum, 6)}
