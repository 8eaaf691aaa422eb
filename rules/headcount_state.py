"""The per-shaft state of the headcount rule, its alarm records and the reconciliation clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from buffer.record import Kind, Record

SEVERITY = {"over_limit": "immediate", "negative": "immediate", "not_zero_at_reconcile": "immediate", "mismatch": "immediate"}


@dataclass
class ShaftState:
    """What a shaft has counted since its last reconciliation; all of it goes into the snapshot."""

    cameras: dict[str, dict[str, int]] = field(default_factory=dict)  # camera -> {"in": n, "out": n}
    raised: set[str] = field(default_factory=set)
    reconciled_at: float | None = None  # the reconciliation moment (epoch) last handled
    external: tuple[float, float] | None = None  # (value, ts) of the last good external count
    mismatch_since: float | None = None
    #: a raised mismatch whose external count went stale was said to be unknown (said once)
    external_unknown: bool = False

    @property
    def underground(self) -> int:
        return self.total("in") - self.total("out")

    def total(self, direction: str) -> int:
        return sum(c.get(direction, 0) for c in self.cameras.values())

    def add(self, camera: str, direction: str) -> None:
        counts = self.cameras.setdefault(camera, {"in": 0, "out": 0})
        counts[direction] += 1

    def set_raised(self, kind: str, on: bool) -> None:
        (self.raised.add if on else self.raised.discard)(kind)

    def reset(self, at: float) -> None:
        self.cameras = {k: {"in": 0, "out": 0} for k in self.cameras}
        self.reconciled_at = at

    def to_dict(self) -> dict[str, Any]:
        return {
            "cameras": self.cameras,
            "raised": sorted(self.raised),
            "reconciled_at": self.reconciled_at,
            "external": list(self.external) if self.external else None,
            "mismatch_since": self.mismatch_since,
            "external_unknown": self.external_unknown,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShaftState:
        ext = d.get("external")
        return cls(
            {k: {"in": int(v.get("in", 0)), "out": int(v.get("out", 0))} for k, v in d.get("cameras", {}).items()},
            set(d.get("raised", [])),
            d.get("reconciled_at"),
            (float(ext[0]), float(ext[1])) if ext else None,
            d.get("mismatch_since"),
            bool(d.get("external_unknown", False)),
        )


def alarm(shaft: str, kind: str, raised: bool, text: str, evidence: dict[str, Any], ts: float) -> Record:
    """An alarm record of this rule: stable id ``headcount:<kind>:<shaft>``."""
    return Record(
        shaft,
        Kind.ALARM,
        {
            "alarm": f"headcount_{kind}",
            "state": "raised" if raised else "cleared",
            "id": f"headcount:{kind}:{shaft}",
            "severity": SEVERITY[kind],
            "text": text,
            "shaft": shaft,
            "evidence": evidence,
        },
        ts=ts,
    )


def last_boundary(now: float, hhmm: str, tz: tzinfo | None) -> float:
    """The latest moment ≤ ``now`` whose local wall time (in ``tz``) is ``hhmm``, as epoch seconds.

    Once per local calendar day: on a daylight-saving day the wall time is taken at its first
    occurrence (fold 0); a wall time skipped by the clock change maps to the moment just after it.
    """
    hh, mm = map(int, hhmm.split(":"))
    local = datetime.fromtimestamp(now, tz).astimezone(tz)
    day = local.date()
    for back in range(3):
        d = day - timedelta(days=back)
        wall = datetime(d.year, d.month, d.day, hh, mm).replace(tzinfo=tz) if tz else datetime(d.year, d.month, d.day, hh, mm)
        at = wall.timestamp()
        if at <= now:
            return at
    raise AssertionError("unreachable: a reconciliation time within two days")
