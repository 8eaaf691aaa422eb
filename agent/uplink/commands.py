"""Inbound commands from the platform: ``{prefix}/{site}/{gateway}/command`` (docs/mqtt.md).

The topic is per gateway and the broker's ACL decides who may publish to it; everything that
arrives is still treated as hostile: size-capped, rate-limited, parsed strictly. A valid command
becomes a ``command`` event record (source ``platform``) through ``Buffer.emit``: it is recorded
first and acted on by the rule that owns it once committed. An invalid one becomes a
``command_rejected`` record and is never executed. Payloads are never logged.
"""

from __future__ import annotations

import asyncio
import json
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
#: the first ``command_flood`` record comes this soon after the first drop; later ones at most
#: once per ``FLOOD_REPORT_S``
FIRST_REPORT_S = 5.0
#: dropped command ids named in one ``command_flood`` record
MAX_REPORTED_IDS = 50
#: rejection records per window before they are only counted
MAX_REJECTED_RECORDS = 30


class Invalid(ValueError):
    """A command that must not be executed; ``str()`` is the reason, safe to record."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise Invalid(f"key {_clip(dup)} appears twice (which one would count is not defined)")
    return dict(pairs)


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
        doc = json.loads(payload, object_pairs_hook=_no_duplicates)
    except (orjson.JSONDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, Invalid):
            raise
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
    tokens: float | None = None  # starts full (``burst``)
    at: float | None = None

    def __post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        """``now`` is a monotonic time: a wall clock stepped back by NTP must not starve commands."""
        tokens = self.burst if self.tokens is None else self.tokens
        if self.at is not None:
            tokens = max(0.0, min(self.burst, tokens + max(0.0, now - self.at) * self.rate))
        self.at, self.tokens = now, tokens
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


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
        self._since_wall = 0.0  # wall time of the first unreported drop or rejection
        self._due: float | None = None  # monotonic time the pending report is due
        self._last_report = float("-inf")  # monotonic
        self._dropped = 0
        self._dropped_ids: list[str] = []
        self._reject_window = float("-inf")  # monotonic start of the rejection-record window
        self._rejected_in_window = 0
        self._rejected_unrecorded = 0
        self._timer: asyncio.TimerHandle | None = None

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
        if self._due is not None and mono >= self._due:  # a message arriving late reports it too
            self.flush(now, mono)
        if not self.bucket.take(mono):
            self.flooded += 1
            self._dropped += 1
            if len(self._dropped_ids) < MAX_REPORTED_IDS:
                self._dropped_ids.append(_command_id(payload))
            self._pending(now, mono)
            return
        try:
            if retain:  # a retained command would be replayed at every connect
                raise Invalid("retained message: commands must be published with retain false")
            doc = parse(payload)
        except Invalid as exc:
            self.rejected += 1
            if mono - self._reject_window >= FLOOD_REPORT_S:
                self._reject_window, self._rejected_in_window = mono, 0
            self._rejected_in_window += 1
            if self._rejected_in_window > MAX_REJECTED_RECORDS:
                self._rejected_unrecorded += 1
                self._pending(now, mono)
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

    def _pending(self, now: float, mono: float) -> None:
        """Something to report: due ``FIRST_REPORT_S`` after it began, and never sooner than
        ``FLOOD_REPORT_S`` after the last report; a timer writes it even if no message follows."""
        if self._due is not None:
            return
        self._since_wall = now
        self._due = max(mono + FIRST_REPORT_S, self._last_report + FLOOD_REPORT_S)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test): the next message or flush() reports it
            return
        self._timer = loop.call_later(self._due - mono, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self, now: float | None = None, mono: float | None = None) -> None:
        """Write the pending ``command_flood`` record now (when due, or the uplink stopping)."""
        now = time.time() if now is None else now
        mono = time.monotonic() if mono is None else mono
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dropped or self._rejected_unrecorded:
            log.warning(
                "uplink: command flood: %d dropped over the rate limit, %d rejected without a record each",
                self._dropped,
                self._rejected_unrecorded,
            )
            self.buffer.emit(
                Record(
                    "platform",
                    Kind.EVENT,
                    {
                        "event": "command_flood",
                        "dropped": self._dropped,
                        "dropped_ids": list(self._dropped_ids),
                        "rejected_not_recorded": self._rejected_unrecorded,
                        "since": iso(self._since_wall),
                        "at": iso(now),
                        "limit": {"rate_per_s": self.bucket.rate, "burst": self.bucket.burst},
                    },
                    ts=now,
                )
            )
            self._last_report = mono
        self._due = None
        self._dropped, self._dropped_ids, self._rejected_unrecorded = 0, [], 0


def _command_id(payload: bytes) -> str:
    """The id of a dropped command if it has a valid one (read, never trusted), else ``?``."""
    try:
        doc = orjson.loads(payload[:MAX_BYTES])
    except orjson.JSONDecodeError:
        return "?"
    cid = doc.get("id") if isinstance(doc, dict) else None
    return cid if isinstance(cid, str) and _ID.match(cid) else "?"
