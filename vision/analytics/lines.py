"""Two-way line counting with hysteresis, and people underground per shaft."""

from __future__ import annotations

import math
import time
from typing import Any

from buffer.record import Kind
from config.vision import LineSettings, ShaftSettings
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
            self.emit(Kind.EVENT, {"event": "line_crossing", "line": self.settings.name, "direction": direction,
                                   "class": t.label, "track": t.id, "in": self.total("in"), "out": self.total("out")}, ())
        live = {t.id for t in ctx.tracks}
        for tid in [k for k in self._side if k not in live]:
            del self._side[tid]
        return crossings

    def total(self, direction: str, label: str = "person") -> int:
        return self.counts[direction].get(label, 0)


class Headcount:
    """People underground = in − out over a shaft's lines; alarms when negative or over the limit."""

    def __init__(self, settings: ShaftSettings, emit: Emit, clock: Any = time.time) -> None:
        self.settings, self.emit, self.clock = settings, emit, clock
        self.underground = 0
        self.alarm: str | None = None
        self._last_reconcile_day: str | None = None

    def update(self, delta: int, ts: float) -> None:
        self.underground += delta
        self.emit(Kind.TELEMETRY, {"shaft": self.settings.name, "underground": self.underground}, ())
        state = "negative" if self.underground < 0 else "over_limit" if self.underground > self.settings.limit else None
        if state != self.alarm:
            if state:
                self.emit(Kind.ALARM, {"alarm": f"headcount_{state}", "state": "raised", "shaft": self.settings.name,
                                       "underground": self.underground, "limit": self.settings.limit}, ())
            else:
                self.emit(Kind.ALARM, {"alarm": f"headcount_{self.alarm}", "state": "cleared",
                                       "shaft": self.settings.name, "underground": self.underground}, ())
            self.alarm = state

    def maybe_reconcile(self, ts: float) -> None:
        """At the daily reconciliation time, report the residual and start from zero (shift change)."""
        local = time.localtime(ts)
        day = time.strftime("%Y-%m-%d", local)
        hh, mm = map(int, self.settings.reconcile_at.split(":"))
        if (local.tm_hour, local.tm_min) >= (hh, mm) and self._last_reconcile_day != day:
            if self._last_reconcile_day is not None:
                self.emit(Kind.EVENT, {"event": "headcount_reconciled", "shaft": self.settings.name,
                                       "residual": self.underground}, ())
                self.underground = 0
            self._last_reconcile_day = day
