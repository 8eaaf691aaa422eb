"""The documented variables of the platform-mapping templates (docs/mqtt.md, "Platform mappings").

One table, read by the compiler (``config.template``: which names exist, which may go into a
topic, which need a point) and mirrored by the uplink's record context, which computes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Var:
    """One documented variable: ``scalar`` values may go into topics, ``any`` only into payloads."""

    kind: str  # "scalar" | "any" | "maybe" (payload.<key>: checked when rendered)
    scope: str  # "record" | "point"
    doc: str


VARIABLES: dict[str, Var] = {
    "prefix": Var("scalar", "record", "uplink.topic_prefix"),
    "site": Var("scalar", "record", "gateway.site"),
    "gateway": Var("scalar", "record", "gateway.id"),
    "seq": Var("scalar", "record", "the record's sequence number (integer)"),
    "kind": Var("scalar", "record", "telemetry | event | alarm | health"),
    "source": Var("scalar", "record", "the device, camera or agent part that produced the record"),
    "ts": Var("scalar", "record", "observation time, UTC ISO-8601 with ms: 2026-11-25T02:10:00.123Z"),
    "ts_ms": Var("scalar", "record", "observation time, epoch milliseconds (integer)"),
    "ts_s": Var("scalar", "record", "observation time, epoch seconds (integer)"),
    "ts_local": Var("scalar", "record", "local time (mapping.timezone): 2026-11-25 10:10:00"),
    "ts_local_ms": Var("scalar", "record", "local time with ms: 2026-11-25 10:10:00.123"),
    "ts_local_iso": Var("scalar", "record", "local ISO-8601 with offset: 2026-11-25T10:10:00.123+08:00"),
    "ts_compact": Var("scalar", "record", "local time, digits only: 20261125101000"),
    "date_local": Var("scalar", "record", "local date: 2026-11-25"),
    "synced": Var("scalar", "record", "true when the gateway clock was synchronised (boolean)"),
    "prev": Var("scalar", "record", "chain hash of the record before"),
    "chain": Var("scalar", "record", "chain hash of this record"),
    "record": Var("any", "record", "the whole chained record document (verifiable with headframe verify)"),
    "payload": Var("any", "record", "the record's payload object; payload.<key>[.<key>] reaches inside (null if absent)"),
    "group": Var("scalar", "record", "telemetry poll group (payload.group), null if none"),
    "event": Var("scalar", "record", "event type (payload.event), null on other records"),
    "alarm.type": Var("scalar", "record", "alarm type (payload.alarm), null on other records"),
    "alarm.id": Var("scalar", "record", "alarm id as the alarm manager names it: <source>:<type>[:<zone>]"),
    "alarm.state": Var("scalar", "record", "raised | cleared | ... (payload.state)"),
    "alarm.severity": Var("scalar", "record", "immediate | same_day (rules.alarms)"),
    "alarm.text": Var("scalar", "record", "payload.text, null if none"),
    "points": Var("any", "record", 'the points as [{"name","value","quality","unit"}]'),
    "attachments": Var("any", "record", "attachment metadata with base64 data, [] if none"),
    "point.name": Var("scalar", "point", "point name (p_total)"),
    "point.value": Var("scalar", "point", "point value as measured (number, boolean or text)"),
    "point.quality": Var("scalar", "point", "good | bad | stale"),
    "point.unit": Var("scalar", "point", "engineering unit, null if none"),
    "point.reason": Var("scalar", "point", "why a value is bad, null if good"),
    "point.index": Var("scalar", "point", "0-based position of the point in its record"),
}
