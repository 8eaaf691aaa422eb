"""Site "operating / stopped" from metered power, with hysteresis and a minimum duration.

Moved here from ``drivers/`` (issue 11): it combines several meters, so it is a site rule fed by
committed telemetry. Readings are non-negative, so the sum of the points that are known is a
lower bound of the site's draw: it may prove "operating" on its own, but "stopped" needs every
point good and fresh. A stale or bad point leaves the sum (issue 13); when no point is known
the state is "unknown", never "stopped".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record
from config.drivers import OperatingStateSettings
from rules.points import PointCache


class OperatingStateRule:
    """Emits ``operating_state`` events on source ``site`` when the summed power changes state."""

    name = "operating_state"

    def __init__(self, settings: OperatingStateSettings, source: str = "site") -> None:
        self.settings, self.source = settings, source
        self.points = PointCache(settings.power_points, settings.max_age)
        self.state = "unknown"
        self.since: float | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out: list[Record] = []
        for c in batch:
            if self.points.feed(c.record):
                out += self._evaluate(c.record.ts)
        return out

    def tick(self, now: float) -> list[Record]:
        return self._evaluate(now)  # ages the readings: a silent meter leaves the sum

    def _evaluate(self, ts: float) -> list[Record]:
        known = [
            float(v)
            for k in self.settings.power_points
            if isinstance(v := self.points.value(k, ts), int | float) and not isinstance(v, bool)
        ]
        if not known:
            if self.state == "unknown":
                return []
            previous, self.state, self.since, self._candidate = self.state, "unknown", ts, None
            return [self._event(previous, None, ts, reason="no good, fresh reading from any power point")]
        total = sum(known)
        complete = len(known) == len(self.settings.power_points)
        s = self.settings
        if total >= s.on_above_kw:
            target: str | None = "operating"
        elif total <= s.off_below_kw and complete:
            target = "stopped"
        else:
            target = None  # inside the band, or too few points to prove "stopped": keep heading where we were
        if target is None or target == self.state:
            if target == self.state:
                self._candidate = None
            return []
        if self._candidate != target:
            self._candidate, self._candidate_since = target, ts
        if ts - self._candidate_since < s.min_duration:
            return []
        previous, self.state, self.since = self.state, target, self._candidate_since
        self._candidate = None
        return [self._event(previous, total, ts)]

    def _event(self, previous: str, total: float | None, ts: float, **extra: Any) -> Record:
        s = self.settings
        missing = [k for k in s.power_points if self.points.value(k, ts) is None]
        payload: dict[str, Any] = {
            "event": "operating_state",
            "state": self.state,
            "previous": previous,
            "power_kw": None if total is None else round(total, 3),
            "since_ts": self.since,
            "thresholds_kw": [s.off_below_kw, s.on_above_kw],
            **extra,
        }
        if missing:
            payload["unknown_points"] = missing
        return Record(self.source, Kind.EVENT, payload, ts=ts)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "candidate": self._candidate,
            "candidate_since": self._candidate_since,
            "points": self.points.snapshot(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.state = snapshot.get("state", "unknown")
        self.since = snapshot.get("since")
        self._candidate = snapshot.get("candidate")
        self._candidate_since = float(snapshot.get("candidate_since", 0.0))
        self.points.restore(snapshot.get("points", {}))
