"""The ``command_reply`` record every rule that owns a command answers with (docs/mqtt.md)."""

from __future__ import annotations

from typing import Any

from buffer.record import Kind, Record
from rules.alarm_life import iso


def command_reply(rec: Record, cid: str | None, result: str, now: float, reason: str | None, **extra: Any) -> Record:
    """The answer to command record ``rec``: ``ok | rejected | duplicate | stale``, with why."""
    p = rec.payload
    payload: dict[str, Any] = {
        "event": "command_reply",
        "id": cid,
        "command": p.get("command"),
        "target": p.get("target"),
        "result": result,
        "at": iso(now),
        **extra,
    }
    if reason is not None:
        payload["reason"] = reason
    return Record(rec.source, Kind.EVENT, payload, ts=now)
