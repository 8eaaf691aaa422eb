"""TEST TOOL, not a production rule: counts committed telemetry records; every ``every``-th
emits a ``counted`` event. Its snapshot is the count, so "never lost, never doubled" can be
checked against the telemetry rows in the buffer. Loaded into a real agent with the test hook
``HEADFRAME_EXTRA_RULES=tests.rules.counting_rule`` (``COUNTING_EVERY``, default 1000).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record


class CountingRule:
    def __init__(self, every: int = 1000, name: str = "counting") -> None:
        self.name, self.every, self.count = name, every, 0

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out = []
        for c in batch:
            if c.record.kind is Kind.TELEMETRY:
                self.count += 1
                if self.count % self.every == 0:
                    out.append(Record("counting", Kind.EVENT, {"event": "counted", "count": self.count, "at_seq": c.seq}, ts=now))
        return out

    def tick(self, now: float) -> list[Record]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.count = int(snapshot["count"])


def build(settings: Any) -> list[CountingRule]:
    return [CountingRule(every=int(os.environ.get("COUNTING_EVERY", "1000")))]
