"""The personnel-positioning system's headcount as an MQTT value (``rules.headcount.external[].mqtt``).

The uplink subscribes to each configured topic on its own broker. A valid message becomes a
telemetry record shaped like a device's (source ``pps-<shaft>`` or the configured ``source``,
``{"values": {"people_underground": {"v": n, "q": "good"}}}``), committed through
``Buffer.emit`` like every reading, so the headcount rule compares it exactly as it compares a
Modbus point. Everything that arrives is hostile: size-capped, rate-limited, parsed strictly; an
invalid message becomes one ``external_count_rejected`` event and never a value. Payloads are
never logged.

Retained messages are rejected: a retained count is whatever was published last, possibly hours
ago by a system that has since died, and the broker gives no age for it. The rule then knows no
external value until the next live message, which is the safe side: an unknown count is never
compared, a stale one could raise or hide a mismatch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from agent.uplink.inbound import FloodReport, Invalid, TokenBucket, excerpt, no_duplicate_keys
from agent.uplink.status import iso
from buffer.record import Kind, Record
from config.rules.headcount import MQTT_POINT, ExternalCount

if TYPE_CHECKING:
    from buffer.boundary import Buffer

log = logging.getLogger("headframe.uplink")

MAX_BYTES = 4096
#: more people than any mine has underground: a larger number is a broken sender
MAX_COUNT = 100_000


def parse_count(payload: bytes, field: str | None) -> int:
    """The count in ``payload`` (a JSON object with the number at the dotted ``field``, or a bare
    number when ``field`` is None), or :class:`Invalid` saying why not (never another exception)."""
    if len(payload) > MAX_BYTES:
        raise Invalid(f"payload of {len(payload)} bytes exceeds {MAX_BYTES}")
    try:
        return _parse(payload, field)
    except Invalid:
        raise
    except Exception as exc:  # a case the checks below missed must still be a rejection, never a crash
        raise Invalid(f"malformed count ({type(exc).__name__})") from None


def _parse(payload: bytes, field: str | None) -> int:
    try:
        orjson.loads(payload)  # strict UTF-8 and JSON (no NaN / Infinity) first
        doc = json.loads(payload, object_pairs_hook=no_duplicate_keys)
    except (orjson.JSONDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid("payload is not JSON") from None
    value: Any = doc
    if field is not None:
        for depth, key in enumerate(field.split(".")):
            if not isinstance(value, dict):
                where = ".".join(field.split(".")[:depth]) or "the payload"
                raise Invalid(f"{where} is not a JSON object (field {field!r} expected)")
            if key not in value:
                raise Invalid(f"field {field!r} is missing")
            value = value[key]
    what = f"field {field!r}" if field else "the payload"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{what} is a {type(value).__name__ if value is not None else 'null'}, not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"{what} is not a finite number")
    if value != int(value):
        raise Invalid(f"{what} is not a whole number of people")
    if not 0 <= value <= MAX_COUNT:
        raise Invalid(f"{what} is out of range 0-{MAX_COUNT}")
    return int(value)


class ExternalCountInbox:
    """Messages on the positioning system's topics -> telemetry records; runs on the event loop.

    Rate-limited like the command inbox: over ``bucket`` a message is dropped; rejections beyond
    ``MAX_REJECTED_RECORDS`` a minute are only counted. Both are reported in one
    ``external_count_flood`` record ``FIRST_REPORT_S`` after they began (then at most once per
    ``FLOOD_REPORT_S``) and at shutdown (``flush``), never silently.
    """

    def __init__(self, entries: Sequence[ExternalCount], buffer: Buffer, bucket: TokenBucket | None = None) -> None:
        self.buffer = buffer
        self.by_topic: dict[str, list[ExternalCount]] = {}
        for e in entries:
            if e.mqtt is not None:
                self.by_topic.setdefault(e.mqtt.topic, []).append(e)
        # one bucket per topic: one shaft's flooding feed must not starve another shaft's count
        proto = bucket or TokenBucket(rate=5.0, burst=20.0)
        self.bucket = proto
        self.buckets = {t: TokenBucket(rate=proto.rate, burst=proto.burst) for t in self.by_topic}
        self.accepted = self.rejected = self.flooded = 0
        self._dropped_by_topic: dict[str, int] = {}
        self.report = FloodReport(
            buffer,
            source="agent",
            event="external_count_flood",
            what="external count",
            limit=lambda: {"rate_per_s": self.bucket.rate, "burst": self.bucket.burst},
            details=lambda: {"topics": self.topics, "dropped_by_topic": dict(self._dropped_by_topic)},
            reset_details=self._dropped_by_topic.clear,
        )

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)

    def counters(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "flood_dropped": self.flooded}

    def on_message(
        self, topic: str, payload: bytes, retain: bool = False, now: float | None = None, mono: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        mono = time.monotonic() if mono is None else mono
        entries = self.by_topic.get(topic)
        if not entries:
            return
        self.report.catch_up(now, mono)
        if not self.buckets[topic].take(mono):
            self.flooded += 1
            self._dropped_by_topic[topic] = self._dropped_by_topic.get(topic, 0) + 1
            self.report.drop(now, mono)
            return
        for ext in entries:
            field = ext.mqtt.field if ext.mqtt else None
            try:
                if retain:
                    raise Invalid("retained message: a retained count may be stale (the broker gives no age); ignored")
                count = parse_count(payload, field)
            except Invalid as exc:
                self._reject(ext, topic, payload, str(exc), now, mono)
                continue
            self.accepted += 1
            self.buffer.emit(
                Record(
                    ext.feed_source,
                    Kind.TELEMETRY,
                    {"values": {MQTT_POINT: {"v": count, "q": "good"}}, "origin": "mqtt", "topic": topic, "shaft": ext.shaft},
                    ts=now,
                )
            )

    def _reject(self, ext: ExternalCount, topic: str, payload: bytes, reason: str, now: float, mono: float) -> None:
        self.rejected += 1
        if not self.report.may_record_rejection(now, mono):
            return
        log.warning("uplink: external count on %s for shaft %s rejected (%s)", topic, ext.shaft, reason)
        self.buffer.emit(
            Record(
                ext.feed_source,
                Kind.EVENT,
                {
                    "event": "external_count_rejected",
                    "shaft": ext.shaft,
                    "topic": topic,
                    "reason": reason,
                    "size": len(payload),
                    "excerpt": excerpt(payload),
                    "received": iso(now),
                    "origin": "mqtt",
                },
                ts=now,
            )
        )

    def flush(self, now: float | None = None, mono: float | None = None) -> None:
        """Write the pending ``external_count_flood`` record now (the uplink stopping)."""
        self.report.flush(now, mono)
