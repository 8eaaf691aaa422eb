"""What the site rules share: the latest quality-checked value per point, and the alarm record shape.

Drivers report on change (and at least every ``max_silent``), so a rule keeps the last reported
value per ``device.point``. Only a ``good`` value younger than ``max_age`` counts: a stale or bad
report, or silence longer than ``max_age``, makes the point unknown, so a dead meter's last
value cannot keep counting towards a total or keep an alarm raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from buffer.record import Kind, Record
from rules.alarm_life import iso


class PointCache:
    """Last reported (value, quality, ts) of the wanted ``device.point`` keys, from telemetry records."""

    def __init__(self, wanted: Iterable[str], max_age: float) -> None:
        self.wanted = set(wanted)
        self.devices = {w.partition(".")[0] for w in self.wanted}
        self.max_age = max_age
        self.last: dict[str, tuple[Any, str, float, str | None]] = {}

    def feed(self, rec: Record) -> bool:
        """Take a telemetry record's values; True when a wanted point was reported."""
        if rec.kind is not Kind.TELEMETRY or rec.source not in self.devices:
            return False
        values = rec.payload.get("values")
        if not isinstance(values, dict):
            return False
        hit = False
        for point, entry in values.items():
            key = f"{rec.source}.{point}"
            if key in self.wanted and isinstance(entry, dict):
                self.last[key] = (entry.get("v"), str(entry.get("q", "good")), rec.ts, entry.get("unit"))
                hit = True
        return hit

    def value(self, key: str, now: float) -> Any:
        """The value if good and fresh, else None (unknown)."""
        got = self.last.get(key)
        if got is None:
            return None
        v, q, ts, _ = got
        if q != "good" or v is None or now - ts > self.max_age:
            return None
        return v

    def quality(self, key: str, now: float) -> str:
        """good | bad | stale | missing (stale also when silent longer than max_age)."""
        got = self.last.get(key)
        if got is None:
            return "missing"
        q, ts = got[1], got[2]
        if q == "good" and now - ts > self.max_age:
            return "stale"
        return q

    def reading(self, key: str, now: float) -> dict[str, Any]:
        """The evidence form of a point: value, unit, quality, observation time."""
        got = self.last.get(key)
        out: dict[str, Any] = {"point": key, "q": self.quality(key, now)}
        if got is not None:
            out["v"], out["ts"] = got[0], iso(got[2])
            if got[3]:
                out["unit"] = got[3]
        return out

    def snapshot(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.last.items()}

    def restore(self, snap: dict[str, list[Any]]) -> None:
        self.last = {k: (v[0], v[1], float(v[2]), v[3] if len(v) > 3 else None) for k, v in snap.items() if k in self.wanted}


def alarm(
    rule: str,
    kind: str,
    subject: str,
    state: str,
    severity: str,
    text: str,
    ts: float,
    evidence: dict[str, Any] | None = None,
    **extra: Any,
) -> Record:
    """An alarm record with the stable id ``<rule>:<type>:<subject>`` on source ``subject``."""
    payload: dict[str, Any] = {
        "alarm": kind,
        "state": state,
        "id": f"{rule}:{kind}:{subject}",
        "severity": severity,
        "text": text,
        **extra,
    }
    if evidence is not None:
        payload["evidence"] = evidence
    return Record(subject, Kind.ALARM, payload, ts=ts)
