"""Belt × scale: the camera's belt load level against the belt scale's flow (t/h).

A loaded belt whose scale reads about zero, or a scale that reads flow on an empty belt, for
longer than ``for`` points at a bypassed or tampered scale (production hidden from the
weighing record). Either side unknown (stale scale, silent camera) decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record
from config.rules.site import BeltScale
from rules.points import PointCache, alarm, iso


class BeltScaleRule:
    """One belt: raise ``belt_scale_mismatch`` after ``for`` of disagreement, clear after ``for`` of agreement."""

    def __init__(self, settings: BeltScale) -> None:
        self.s = settings
        self.name = f"belt_scale:{settings.name}"
        self.scale = PointCache([settings.scale], settings.max_age)
        self.load: tuple[float, float] | None = None  # (load %, ts) from the camera's telemetry
        self.mismatch: str | None = None
        self.since: float | None = None
        self.raised: str | None = None
        self.agree_since: float | None = None

    def _take(self, rec: Record) -> None:
        self.scale.feed(rec)
        if rec.source == self.s.camera and rec.kind is Kind.TELEMETRY and isinstance(rec.payload.get("belt"), dict):
            load = rec.payload["belt"].get("load_pct")
            if isinstance(load, int | float):
                self.load = (float(load), rec.ts)

    def _condition(self, now: float) -> tuple[str | None, dict[str, Any]]:
        s = self.s
        flow = self.scale.value(s.scale, now)
        load = self.load[0] if self.load and now - self.load[1] <= s.max_age else None
        ev = {
            "scale": self.scale.reading(s.scale, now),
            "camera": s.camera,
            "load_pct": load,
            "load_ts": iso(self.load[1]) if self.load else None,
        }
        if not isinstance(flow, int | float) or load is None:
            return "unknown", ev
        if load >= s.loaded_above_pct and flow <= s.zero_below:
            return "loaded_scale_zero", ev
        if load <= s.empty_below_pct and flow >= s.flowing_above:
            return "empty_scale_flowing", ev
        return None, ev

    def _evaluate(self, now: float) -> list[Record]:
        s = self.s
        cond, ev = self._condition(now)
        if cond == "unknown":
            self.mismatch, self.since, self.agree_since = None, None, None
            return []  # decide nothing without both sides; a raised alarm stays until they agree
        if cond != self.mismatch:
            self.mismatch, self.since = cond, now
        if cond is not None:
            self.agree_since = None
            since = now if self.since is None else self.since
            if self.raised is None and now - since >= s.for_:
                self.raised = cond
                what = (
                    "belt loaded but the scale reads about zero"
                    if cond == "loaded_scale_zero"
                    else "the scale reads flow on an empty belt"
                )
                return [
                    alarm(
                        "belt",
                        "belt_scale_mismatch",
                        s.name,
                        "raised",
                        "immediate",
                        f"Belt {s.name}: {what} for {int(now - since)} s; check the scale for bypass or tampering.",
                        now,
                        {**ev, "mismatch": cond, "for_s": s.for_},
                        mismatch=cond,
                    )
                ]
            return []
        if self.raised is None:
            return []
        self.agree_since = now if self.agree_since is None else self.agree_since
        if now - self.agree_since < s.for_:
            return []
        self.raised, self.agree_since = None, None
        return [
            alarm(
                "belt",
                "belt_scale_mismatch",
                s.name,
                "cleared",
                "immediate",
                f"Belt {s.name}: scale and camera agree again.",
                now,
                ev,
            )
        ]

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        for c in batch:
            self._take(c.record)
        return self._evaluate(now)

    def tick(self, now: float) -> list[Record]:
        return self._evaluate(now)

    def snapshot(self) -> dict[str, Any]:
        return {
            "scale": self.scale.snapshot(),
            "load": list(self.load) if self.load else None,
            "mismatch": self.mismatch,
            "since": self.since,
            "raised": self.raised,
            "agree_since": self.agree_since,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.scale.restore(snapshot.get("scale", {}))
        load = snapshot.get("load")
        self.load = (float(load[0]), float(load[1])) if load else None
        self.mismatch, self.since = snapshot.get("mismatch"), snapshot.get("since")
        self.raised, self.agree_since = snapshot.get("raised"), snapshot.get("agree_since")
