"""Inbound commands from the platform: ``{prefix}/{site}/{gateway}/command`` (docs/mqtt.md).

The topic is per gateway and the broker's ACL decides who may publish to it; everything that
arrives is still treated as hostile: size-capped, rate-limited, parsed strictly. A valid command
becomes a ``command`` event record (source ``platform``) through ``Buffer.emit``: it is recorded
first and acted on by the rule that owns it once committed. An invalid one becomes a
``command_rejected`` record and is never executed. Payloads are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import orjson

from agent.uplink.inbound import FloodReport, Invalid, TokenBucket, clip, excerpt, no_duplicate_keys
from agent.uplink.status import iso
from buffer.record import Kind, Record

__all__ = ["MAX_BYTES", "CommandInbox", "Invalid", "TokenBucket", "excerpt", "parse"]

if TYPE_CHECKING:
    from buffer.boundary import Buffer

log = logging.getLogger("headframe.uplink")

MAX_BYTES = 4096
MAX_ARGS_BYTES = 1024
#: Commands a platform may send; each is owned by one rule (ack/handle/close: the alarm manager;
#: permit/permit_revoke: rules.hotwork).
COMMANDS = frozenset({"ack", "handle", "close", "permit", "permit_revoke"})
REQUIRED = ("id", "command", "target")
ALLOWED = frozenset({"id", "command", "target", "by", "args"})
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: dropped command ids named in one ``command_flood`` record
MAX_REPORTED_IDS = 50


def _text(doc: dict[str, Any], key: str, limit: int) -> None:
    value = doc[key]
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise Invalid(f"{key} must be a string of 1-{limit} printable characters")


def parse(payload: bytes) -> dict[str, Any]:
    """The command object, or :class:`Invalid` saying what is wrong with it (never another exception)."""
    if len(payload) > MAX_BYTES:
        raise Invalid(f"payload of {len(payload)} bytes exceeds {MAX_BYTES}")
    try:
        return _parse(payload)
    except Invalid:
        raise
    except Exception as exc:  # a case the checks below missed must still be a rejection, never a crash
        raise Invalid(f"malformed command ({type(exc).__name__})") from None


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        orjson.loads(payload)  # strict UTF-8 and JSON first (the stdlib parser is more lenient)
        doc = json.loads(payload, object_pairs_hook=no_duplicate_keys)
    except (orjson.JSONDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid("payload is not JSON") from None
    if not isinstance(doc, dict):
        raise Invalid("payload is not a JSON object")
    extra = sorted(set(doc) - ALLOWED)
    if extra:
        raise Invalid(f"unknown key(s) {clip(', '.join(map(str, extra)))}; allowed: {', '.join(sorted(ALLOWED))}")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise Invalid(f"missing key(s) {', '.join(missing)}")
    cid = doc["id"]
    if not isinstance(cid, str) or not _ID.match(cid):
        raise Invalid("id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    if not isinstance(doc["command"], str) or doc["command"] not in COMMANDS:
        raise Invalid(f"command must be one of {', '.join(sorted(COMMANDS))}")
    _text(doc, "target", 128)
    if "by" in doc:
        _text(doc, "by", 64)
    if "args" in doc:
        try:  # orjson refuses integers beyond 64 bits and nesting beyond 254 levels
            size = len(orjson.dumps(doc["args"])) if isinstance(doc["args"], dict) else MAX_ARGS_BYTES + 1
        except (TypeError, orjson.JSONEncodeError):
            size = MAX_ARGS_BYTES + 1
        if size > MAX_ARGS_BYTES:
            raise Invalid(
                f"args must be a JSON object of at most {MAX_ARGS_BYTES} bytes (integers of at most 64 bits, little nesting)"
            )
    return doc


class CommandInbox:
    """Turns messages on the command topic into records; runs on the event loop.

    Over the rate limit a command is dropped but never silently: ``FIRST_REPORT_S`` after the
    first drop (and then at most once per ``FLOOD_REPORT_S``) one ``command_flood`` record says
    how many and names the first ``MAX_REPORTED_IDS`` dropped ids; a timer writes it, not the
    next message, and ``flush`` at shutdown. Rejections beyond ``MAX_REJECTED_RECORDS`` a minute
    are counted in that record instead of one record each, so junk cannot flood the buffer either.
    """

    def __init__(self, topic: str, buffer: Buffer, bucket: TokenBucket | None = None) -> None:
        self.topic = topic
        self.buffer = buffer
        self.bucket = bucket or TokenBucket()
        self.accepted = self.rejected = self.flooded = self.ignored = 0
        self._dropped_ids: list[str] = []
        self.report = FloodReport(
            buffer,
            source="platform",
            event="command_flood",
            what="command",
            limit=lambda: {"rate_per_s": self.bucket.rate, "burst": self.bucket.burst},
            details=lambda: {"dropped_ids": list(self._dropped_ids)},
            reset_details=self._dropped_ids.clear,
        )

    def counters(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "flood_dropped": self.flooded, "wrong_topic": self.ignored}

    def on_message(
        self, topic: str, payload: bytes, retain: bool = False, now: float | None = None, mono: float | None = None
    ) -> None:
        """``now`` (wall clock) stamps the records; ``mono`` (monotonic) drives the rate limit and
        the windows. Tests may pass ``now`` alone: it then drives both."""
        if now is None:
            now, mono = time.time(), time.monotonic() if mono is None else mono
        elif mono is None:
            mono = now
        if topic != self.topic:
            self.ignored += 1
            return
        self.report.catch_up(now, mono)
        if not self.bucket.take(mono):
            self.flooded += 1
            if len(self._dropped_ids) < MAX_REPORTED_IDS:
                self._dropped_ids.append(_command_id(payload))
            self.report.drop(now, mono)
            return
        try:
            if retain:  # a retained command would be replayed at every connect
                raise Invalid("retained message: commands must be published with retain false")
            doc = parse(payload)
        except Invalid as exc:
            self.rejected += 1
            if not self.report.may_record_rejection(now, mono):
                return
            log.warning("uplink: command rejected (%s)", exc)
            self.buffer.emit(
                Record(
                    "platform",
                    Kind.EVENT,
                    {
                        "event": "command_rejected",
                        "reason": str(exc),
                        "size": len(payload),
                        "excerpt": excerpt(payload),
                        "received": iso(now),
                        "origin": "mqtt",
                    },
                    ts=now,
                )
            )
            return
        self.accepted += 1
        record = {
            "event": "command",
            "id": doc["id"],
            "command": doc["command"],
            "target": doc["target"],
            "by": doc.get("by", "platform"),
            "received": iso(now),
            "origin": "mqtt",
        }
        if "args" in doc:
            record["args"] = doc["args"]
        log.info("uplink: command %s %s received", doc["id"], doc["command"])
        self.buffer.emit(Record("platform", Kind.EVENT, record, ts=now))

    def flush(self, now: float | None = None, mono: float | None = None) -> None:
        """Write the pending ``command_flood`` record now (the uplink stopping)."""
        self.report.flush(now, mono)


def _command_id(payload: bytes) -> str:
    """The id of a dropped command if it has a valid one (read, never trusted), else ``?``."""
    try:
        doc = orjson.loads(payload[:MAX_BYTES])
    except orjson.JSONDecodeError:
        return "?"
    cid = doc.get("id") if isinstance(doc, dict) else None
    return cid if isinstance(cid, str) and _ID.match(cid) else "?"
