"""Two-way line counting with hysteresis.

A camera only reports crossings (``line_crossing`` events, with the line's ``shaft``); people
underground per shaft is summed over all its cameras by the rule ``rules/headcount.py``, the
one headcount of a shaft (a worker restart cannot lose or double it there).
"""

from __future__ import annotations

import math
from typing import Any

from buffer.record import Kind
from config.vision import LineSettings
from vision.analytics import Emit, FrameContext
from vision.geometry import signed_distance, to_pixels, within_segment


class LineCounter:
    """Counts confirmed tracks crossing A→B. A track must leave the hysteresis band on one side
    and then on the other to count, so someone lingering on the line counts once."""

    def __init__(self, settings: LineSettings, emit: Emit) -> None:
        self.settings, self.emit = settings, emit
        self.counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        self._side: dict[int, int] = {}
        self._geom: tuple[Any, Any, float] | None = None

    def _geometry(self, width: int, height: int) -> tuple[Any, Any, float]:
        if self._geom is None:
            a, b = to_pixels(self.settings.points, width, height)
            self._geom = (a, b, self.settings.band * math.hypot(width, height))
        return self._geom

    def process(self, ctx: FrameContext) -> list[tuple[str, str, int]]:
        a, b, band = self._geometry(*ctx.size)
        crossings = []
        for t in ctx.tracks:
            p = t.anchor
            if not within_segment(a, b, p, slack=band):
                continue
            d = signed_distance(a, b, p)
            side = 1 if d > band else -1 if d < -band else 0
            if side == 0 or t.id is None:
                continue
            before = self._side.get(t.id)
            self._side[t.id] = side
            if before is None or before == side:
                continue
            direction = "in" if side > 0 else "out"
            self.counts[direction][t.label] = self.counts[direction].get(t.label, 0) + 1
            crossings.append((direction, t.label, t.id))
            event = {
                "event": "line_crossing",
                "line": self.settings.name,
                "direction": direction,
                "class": t.label,
                "track": t.id,
                "in": self.total("in"),
                "out": self.total("out"),
            }
            if self.settings.shaft:
                event["shaft"] = self.settings.shaft
            self.emit(Kind.EVENT, event, ())
        live = {t.id for t in ctx.tracks}
        for tid in [k for k in self._side if k not in live]:
            del self._side[tid]
        return crossings

    def total(self, direction: str, label: str = "person") -> int:
        return self.counts[direction].get(label, 0)
