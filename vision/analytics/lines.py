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
from vision.tracker import Track


class LineCounter:
    """Counts confirmed tracks crossing A→B. A track must leave the hysteresis band on one side
    and then on the other to count, so someone lingering on the line counts once.

    It reads each track's measured foot points (``Track.history``), including those from before
    the track was confirmed, so a person first seen near the line still has a starting side,
    and a prediction coasting through an occlusion never counts on its own.

    When a track is lost and a new one starts where it was last seen (within ``relink_frames``
    analysed frames and about a body height), the new one takes over the old one's side: a
    person whose track broke while crossing (occlusion, a missed detection) still counts once.
    Taking over a side never counts a crossing the old track had already counted.
    """

    def __init__(self, settings: LineSettings, emit: Emit, relink_frames: int = 12) -> None:
        self.settings, self.emit = settings, emit
        self.relink_frames = relink_frames
        self.counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        self._side: dict[int, int] = {}
        self._seen: dict[int, int] = {}  # track id -> frame of the last foot point read
        self._last: dict[int, tuple[int, float, float, float, str]] = {}  # id -> (ctx index, x, y, height, label)
        self._lost: dict[int, tuple[int, float, float, float, str, int]] = {}  # ... + side
        self._geom: tuple[Any, Any, float] | None = None

    def _relink(self, t: Track, p: tuple[float, float], index: int) -> int | None:
        """The side of a recently lost track that ended where ``t`` starts (nearest first), if any."""
        height = float(t.box[3] - t.box[1])
        best, best_d = None, math.inf
        for tid, (when, x, y, h, label, _side) in self._lost.items():
            gap = index - when
            d = math.hypot(p[0] - x, p[1] - y)
            if label == t.label and 0 < gap <= self.relink_frames and d <= max(h, height) * (0.6 + 0.15 * gap) and d < best_d:
                best, best_d = tid, d
        if best is None:
            return None
        return self._lost.pop(best)[5]

    def _geometry(self, width: int, height: int) -> tuple[Any, Any, float]:
        if self._geom is None:
            a, b = to_pixels(self.settings.points, width, height)
            self._geom = (a, b, self.settings.band * math.hypot(width, height))
        return self._geom

    def _points(self, t: Track) -> list[tuple[float, float]]:
        assert t.id is not None
        if not t.history:  # a track built by hand (tests, replays of stored tracks): its box is the measurement
            return [t.anchor] if t.missed == 0 else []
        last = self._seen.get(t.id, -1)
        self._seen[t.id] = t.history[-1][0]
        return [(x, y) for f, x, y in t.history if f > last]

    def process(self, ctx: FrameContext) -> list[tuple[str, str, int]]:
        a, b, band = self._geometry(*ctx.size)
        crossings = []
        for t in ctx.tracks:
            if t.id is None:
                continue
            for p in self._points(t):
                if not within_segment(a, b, p, slack=band):
                    continue
                d = signed_distance(a, b, p)
                side = 1 if d > band else -1 if d < -band else 0
                if side == 0:
                    continue
                before = self._side.get(t.id)
                if before is None and self._lost:
                    before = self._relink(t, p, ctx.index)
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
            if t.missed == 0:
                self._last[t.id] = (ctx.index, *t.anchor, float(t.box[3] - t.box[1]), t.label)
        live = {t.id for t in ctx.tracks}
        for tid in [k for k in self._side if k not in live]:
            if tid in self._last:
                self._lost[tid] = (*self._last[tid], self._side[tid])
            del self._side[tid]
        for tid in [k for k in self._last if k not in live]:
            del self._last[tid]
        for tid in [k for k, v in self._lost.items() if ctx.index - v[0] > self.relink_frames]:
            del self._lost[tid]
        for tid in [k for k in self._seen if k not in live]:
            del self._seen[tid]
        return crossings

    def total(self, direction: str, label: str = "person") -> int:
        return self.counts[direction].get(label, 0)
