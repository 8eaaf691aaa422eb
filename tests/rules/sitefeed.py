"""Committed records as the buffer hands them to rules, in the producers' real payload shapes.

Telemetry follows drivers/device.py (values with quality), camera records follow
vision/pipeline.py (telemetry: zones, belt) and vision/analytics (seal, belt, zone payloads).
"""

from __future__ import annotations

import itertools
from typing import Any

from buffer.record import Attachment, Committed, Kind, Record

_seq = itertools.count(1)


def committed(rec: Record) -> Committed:
    return Committed(next(_seq), rec, "00" * 32)


def reading(device: str, ts: float, **points: Any) -> Committed:
    """Device telemetry: ``point=value`` is a good reading, ``point=("stale"|"bad", value)`` another quality."""
    values: dict[str, Any] = {}
    for name, v in points.items():
        if isinstance(v, tuple):
            q, val = v
            values[name] = {"v": None if q == "bad" else val, "q": q, **({"reason": "timeout"} if q == "bad" else {})}
        else:
            values[name] = {"v": v, "q": "good"}
        if isinstance(values[name]["v"], float):
            values[name]["unit"] = "kW"
    return committed(Record(device, Kind.TELEMETRY, {"group": "default", "values": values}, ts=ts))


def seal_alarm(camera: str, ts: float, jpeg: bytes = b"\xff\xd8seal\xff\xd9") -> Committed:
    return committed(
        Record(
            camera,
            Kind.ALARM,
            {"alarm": "seal_breach", "state": "raised", "objects": 1, "classes": ["person"], "frames_seen": 3},
            ts=ts,
            attachments=(
                Attachment("snapshot.jpg", "image/jpeg", jpeg),
                Attachment("burst-0.jpg", "image/jpeg", b"\xff\xd8burst\xff\xd9"),
            ),
        )
    )


def camera_telemetry(camera: str, ts: float, **data: Any) -> Committed:
    return committed(Record(camera, Kind.TELEMETRY, {"fps": 4.0, "people_visible": 0, **data}, ts=ts))


def belt_state(camera: str, ts: float, running: bool) -> Committed:
    return committed(
        Record(camera, Kind.EVENT, {"event": "belt_state", "state": "running" if running else "stopped", "motion": 4.2}, ts=ts)
    )


def payloads(records: list[Record], kind: Kind | None = None) -> list[dict[str, Any]]:
    return [r.payload for r in records if kind is None or r.kind is kind]
