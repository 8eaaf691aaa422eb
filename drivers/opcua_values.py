"""An OPC UA DataValue as a point's value and quality, in the poller's model.

The server says how good a value is (its status code); the gateway keeps that: good stays
good, uncertain keeps the value with the status's name as the reason, bad has no value and
names the node and what the status means. Numbers get the point's scale and offset.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from asyncua import ua

from config.drivers import PointSettings
from drivers.protocol import BadValue, Reading, Value

#: statuses a technician meets when the node id is wrong, in words that say what to do
_NODE_WORDS = {
    "BadNodeIdUnknown": "the server has no such node",
    "BadNodeIdInvalid": "the server rejects this node id",
    "BadAttributeIdInvalid": "the node is not a variable (an object or folder has no value)",
    "BadNotReadable": "the server does not let this user read the node",
    "BadUserAccessDenied": "the server does not let this user read the node",
}


def status_reason(node: str, status: ua.StatusCode) -> str:
    """``node`` and what ``status`` means, e.g. "ns=2;s=Nope: BadNodeIdUnknown (the server has no such node ...)"."""
    name = status.name
    words = _NODE_WORDS.get(name)
    if words is not None:
        return f"{node}: {name} ({words}; check the node id: headframe probe opcua URL --browse)"
    doc = status.doc.rstrip(".") if status.doc else ""
    return f"{node}: {name}" + (f" ({doc})" if doc else "")


def _engineering(point: PointSettings, raw: Any) -> Value | BadValue:
    if isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int | float):
        value = raw * point.scale + point.offset if (point.scale != 1.0 or point.offset != 0.0) else raw
        if isinstance(value, float) and not math.isfinite(value):  # checked after scaling: 1e306 x 1000 is inf
            return BadValue(f"{point.node}: value is not a finite number (NaN/Inf, or too large once scaled)")
        return value
    if isinstance(raw, datetime.datetime):
        return raw.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or ""
    kind = "an empty value" if raw is None else f"a {type(raw).__name__}"
    return BadValue(f"{point.node}: {kind} is not a number, flag or text (point one array element or field instead)")


def _epoch(ts: datetime.datetime | None) -> float | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.UTC)
    return ts.timestamp()


def to_value(point: PointSettings, dv: ua.DataValue) -> Reading | BadValue:
    """The point's value and quality from the server's DataValue."""
    node = point.node or point.name
    status = dv.StatusCode or ua.StatusCode()
    if status.is_bad():
        return BadValue(status_reason(node, status))
    raw = dv.Value.Value if dv.Value is not None else None
    value = _engineering(point, raw)
    if isinstance(value, BadValue):
        return value
    if status.is_uncertain():
        return Reading(value, "uncertain", status_reason(node, status), _epoch(dv.SourceTimestamp))
    return Reading(value, "good", None, _epoch(dv.SourceTimestamp))
