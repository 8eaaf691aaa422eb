"""The values a mapping template reads from one leased record (docs/mqtt.md, variable table).

Computed on first use and kept for the rest of the record (a template that names ``ts_local``
five times formats the time once; one that never names it never formats it).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from config.rules.alarms import AlarmRules
from config.template import RenderError
from rules.alarm_life import alarm_id, severity_of

if TYPE_CHECKING:
    from buffer.boundary import StoredRecord


@dataclass(frozen=True)
class Site:
    """What every record of this uplink shares."""

    prefix: str
    site: str
    gateway: str
    tz: ZoneInfo
    alarms: AlarmRules


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~5x (8 points = 40 µs)
class Point:
    index: int
    name: str
    value: Any
    quality: Any
    unit: Any
    reason: Any


def extract_points(payload: dict[str, Any]) -> list[Point]:
    """A driver's ``values`` ({name: {v, q, unit, reason}}); else the payload's top-level numbers
    and booleans as good points (camera counts, external headcounts)."""
    values = payload.get("values")
    if isinstance(values, dict) and values and all(isinstance(v, dict) for v in values.values()):
        return [
            Point(i, str(name), v.get("v"), v.get("q", "good"), v.get("unit"), v.get("reason"))
            for i, (name, v) in enumerate(values.items())
        ]
    scalars = [(k, v) for k, v in payload.items() if isinstance(v, int | float) and k not in ("seq",)]
    return [Point(i, k, v, "good", None, None) for i, (k, v) in enumerate(scalars)]


class RecordContext:
    """One record's variables (``config.template.Ctx``)."""

    __slots__ = ("_cache", "_points", "doc", "payload", "point", "rec", "site")

    def __init__(self, site: Site, rec: StoredRecord, doc: dict[str, Any]) -> None:
        self.site, self.rec, self.doc = site, rec, doc
        payload = doc.get("payload")
        self.payload: dict[str, Any] = payload if isinstance(payload, dict) else {}
        self._cache: dict[str, Any] = {}
        self._points: list[Point] | None = None
        self.point: Point | None = None

    def get(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        try:
            value = self._cache[name] = _COMPUTE[name](self)
        except (OverflowError, ValueError, OSError) as exc:  # a time no datetime can hold
            raise RenderError(f"variable ${{{name}}} cannot be computed for this record: {exc}") from None
        return value

    def memo(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """``fn(self)`` once per record (a table lookup keyed by the source, used per point)."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = fn(self)
            return value

    def payload_at(self, keys: tuple[str, ...]) -> Any:
        node: Any = self.payload
        for key in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def points(self) -> list[Point]:
        if self._points is None:
            self._points = extract_points(self.payload)
        return self._points

    def with_point(self, point: Any) -> PointContext:
        return PointContext(self, point)

    def local(self) -> dt.datetime:
        return self.get("_local")  # type: ignore[no-any-return]


class PointContext:
    """A record's variables plus one of its points (inside ``$each``, or ``split: point``).

    Compiled templates read ``point.*`` straight from ``self.point``; every other name is the
    record's, so the record's own (caching) methods answer them."""

    __slots__ = ("get", "memo", "parent", "payload_at", "point", "points")

    def __init__(self, parent: RecordContext, point: Point) -> None:
        self.parent, self.point = parent, point
        self.get, self.memo, self.payload_at, self.points = parent.get, parent.memo, parent.payload_at, parent.points

    def with_point(self, point: Any) -> PointContext:
        return PointContext(self.parent, point)


def _alarm(fn: Callable[[RecordContext], Any]) -> Callable[[RecordContext], Any]:
    """Alarm variables are null on records that are not alarms."""
    return lambda c: fn(c) if c.rec.kind.value == "alarm" else None


def _attachments(c: RecordContext) -> list[dict[str, Any]]:
    metas = [dict(m) for m in c.doc.get("attachments", []) if isinstance(m, dict)]
    for meta, att in zip(metas, c.rec.attachments, strict=False):
        meta["data"] = base64.b64encode(att.data).decode()
    return metas


_COMPUTE: dict[str, Callable[[RecordContext], Any]] = {
    "prefix": lambda c: c.site.prefix,
    "site": lambda c: c.site.site,
    "gateway": lambda c: c.site.gateway,
    "seq": lambda c: c.rec.seq,
    "kind": lambda c: c.rec.kind.value,
    "source": lambda c: c.rec.source,
    "ts": lambda c: c.doc.get("ts"),
    "ts_ms": lambda c: int(c.rec.ts * 1000),  # truncated, as the record's ``ts`` is
    "ts_s": lambda c: int(c.rec.ts),
    "_local": lambda c: dt.datetime.fromtimestamp(c.get("ts_ms") / 1000, c.site.tz),
    "ts_local": lambda c: c.local().strftime("%Y-%m-%d %H:%M:%S"),
    "ts_local_ms": lambda c: c.local().strftime("%Y-%m-%d %H:%M:%S.") + f"{c.local().microsecond // 1000:03d}",
    "ts_local_iso": lambda c: c.local().isoformat(timespec="milliseconds"),
    "ts_compact": lambda c: c.local().strftime("%Y%m%d%H%M%S"),
    "date_local": lambda c: c.local().strftime("%Y-%m-%d"),
    "synced": lambda c: c.doc.get("synced"),
    "prev": lambda c: c.doc.get("prev"),
    "chain": lambda c: c.doc.get("chain"),
    "record": lambda c: c.doc,
    "payload": lambda c: c.payload,
    "group": lambda c: c.payload.get("group"),
    "event": lambda c: c.payload.get("event"),
    "alarm.type": _alarm(lambda c: c.payload.get("alarm")),
    "alarm.id": _alarm(lambda c: alarm_id(c.rec.source, c.payload)),
    "alarm.state": _alarm(lambda c: c.payload.get("state")),
    "alarm.severity": _alarm(lambda c: severity_of(str(c.payload.get("alarm")), c.payload, c.site.alarms)),
    "alarm.text": _alarm(lambda c: c.payload.get("text")),
    "points": lambda c: [{"name": p.name, "value": p.value, "quality": p.quality, "unit": p.unit} for p in c.points()],
    "attachments": _attachments,
}
