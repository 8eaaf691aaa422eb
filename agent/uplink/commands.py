"""Inbound commands from the platform: ``{prefix}/{site}/{gateway}/command`` (docs/mqtt.md).

The topic is per gateway and the broker's ACL decides who may publish to it; everything that
arrives is still treated as hostile: size-capped, rate-limited, parsed strictly. A valid command
becomes a ``command`` event record (source ``platform``) through ``Buffer.emit``: it is recorded
first and acted on by the rule that owns it once committed. An invalid one becomes a
``command_rejected`` record and is never executed. Payloads are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from agent.uplink.status import iso
from buffer.record import Kind, Record

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
EXCERPT_CHARS = 120
FLOOD_REPORT_S = 60.0


class Invalid(ValueError):
    """A command that must not be executed; ``str()`` is the reason, safe to record."""


def parse(payload: bytes) -> dict[str, Any]:
    """The command object, or :class:`Invalid` saying what is wrong with it."""
    if len(payload) > MAX_BYTES:
        raise Invalid(f"payload of {len(payload)} bytes exceeds {MAX_BYTES}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Invalid("payload is not JSON") from None
    if not isinstance(doc, dict):
        raise Invalid("payload is not a JSON object")
    extra = sorted(set(doc) - ALLOWED)
    if extra:
        raise Invalid(f"unknown key(s) {_clip(', '.join(map(str, extra)))}; allowed: {', '.join(sorted(ALLOWED))}")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise Invalid(f"missing key(s) {', '.join(missing)}")
    cid = doc["id"]
    if not isinstance(cid, str) or not _ID.match(cid):
        raise Invalid("id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    if doc["command"] not in COMMANDS:
        raise Invalid(f"command must be one of {', '.join(sorted(COMMANDS))}")
    if not isinstance(doc["target"], str) or not 0 < len(doc["target"]) <= 128:
        raise Invalid("target must be a string of 1-128 characters")
    if "by" in doc and (not isinstance(doc["by"], str) or not 0 < len(doc["by"]) <= 64):
        raise Invalid("by must be a string of 1-64 characters")
    if "args" in doc and (not isinstance(doc["args"], dict) or len(orjson.dumps(doc["args"])) > MAX_ARGS_BYTES):
        raise Invalid(f"args must be a JSON object of at most {MAX_ARGS_BYTES} bytes")
    return doc


def _clip(text: str, n: int = 40) -> str:
    """Escaped and shortened: hostile key names must not inject lines into a log or a record."""
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= n else text[:n] + "…"


def excerpt(payload: bytes) -> str:
    """The first bytes, escaped (no control characters or raw bytes reach a record or a log)."""
    head = payload[:EXCERPT_CHARS].decode("utf-8", errors="backslashreplace")
    text = head.encode("unicode_escape").decode("ascii")
    return text + ("…" if len(payload) > EXCERPT_CHARS else "")


@dataclass
class TokenBucket:
    """``rate`` commands per second on average, up to ``burst`` at once."""

    rate: float = 10.0
    burst: float = 20.0
    tokens: float = 20.0
    at: float | None = None

    def take(self, now: float) -> bool:
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class CommandInbox:
    """Turns messages on the command topic into records; runs on the event loop."""

    def __init__(self, topic: str, buffer: Buffer, bucket: TokenBucket | None = None) -> None:
        self.topic = topic
        self.buffer = buffer
        self.bucket = bucket or TokenBucket()
        self.accepted = self.rejected = self.flooded = self.ignored = 0
        self._unreported = 0
        self._flood_since: float | None = None
        self._last_report = float("-inf")

    def counters(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "flood_dropped": self.flooded, "wrong_topic": self.ignored}

    def on_message(self, topic: str, payload: bytes, retain: bool = False, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if topic != self.topic:
            self.ignored += 1
            return
        if not self.bucket.take(now):
            self.flooded += 1
            self._unreported += 1
            if self._flood_since is None:
                self._flood_since = now
            self._report_flood(now)
            return
        self._report_flood(now)
        try:
            if retain:  # a retained command would be replayed at every connect
                raise Invalid("retained message: commands must be published with retain false")
            doc = parse(payload)
        except Invalid as exc:
            self.rejected += 1
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

    def _report_flood(self, now: float) -> None:
        """At most one ``command_flood`` record a minute, counting what was dropped since the last."""
        if not self._unreported or now - self._last_report < FLOOD_REPORT_S:
            return
        since = self._flood_since if self._flood_since is not None else now
        log.warning("uplink: command flood: %d command(s) dropped over the rate limit", self._unreported)
        self.buffer.emit(
            Record(
                "platform",
                Kind.EVENT,
                {
                    "event": "command_flood",
                    "dropped": self._unreported,
                    "since": iso(since),
                    "at": iso(now),
                    "limit": {"rate_per_s": self.bucket.rate, "burst": self.bucket.burst},
                },
                ts=now,
            )
        )
        self._unreported, self._flood_since, self._last_report = 0, None, now
