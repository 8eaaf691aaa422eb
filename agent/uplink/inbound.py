"""What every inbound MQTT feed shares: hostile-input helpers, a rate limit, and the flood report.

Commands (``agent/uplink/commands.py``) and the positioning system's headcount
(``agent/uplink/external.py``) both take messages from a broker anyone with the credentials can
publish to. Both cap, rate-limit and parse strictly, and both must never drop silently: what the
rate limit dropped and what was rejected beyond the per-window record cap is counted and written
as one report record, soon after it began and then at most once a window. That windowing lives
here once so the two feeds cannot drift apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.uplink.status import iso
from buffer.record import Kind, Record

if TYPE_CHECKING:
    from buffer.boundary import Buffer

log = logging.getLogger("headframe.uplink")

EXCERPT_CHARS = 120
#: later flood reports at most once per window; also the window of the rejection-record cap
FLOOD_REPORT_S = 60.0
#: the first flood report comes this soon after the first drop
FIRST_REPORT_S = 5.0
#: rejection records per window before they are only counted
MAX_REJECTED_RECORDS = 30


class Invalid(ValueError):
    """An inbound message refused; the text says why (it goes into a record, never the payload)."""


def clip(text: str, n: int = 40) -> str:
    """Escaped and shortened: hostile key names must not inject lines into a log or a record."""
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= n else text[:n] + "…"


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing a key given twice: which one counts is not defined by JSON."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise Invalid(f"key {clip(dup)} appears twice (which one would count is not defined)")
    return dict(pairs)


def excerpt(payload: bytes) -> str:
    """The first bytes, escaped (no control characters or raw bytes reach a record or a log)."""
    head = payload[:EXCERPT_CHARS].decode("utf-8", errors="backslashreplace")
    text = head.encode("unicode_escape").decode("ascii")
    return text + ("…" if len(payload) > EXCERPT_CHARS else "")


@dataclass
class TokenBucket:
    """``rate`` messages per second on average, up to ``burst`` at once."""

    rate: float = 10.0
    burst: float = 20.0
    tokens: float | None = None  # starts full (``burst``)
    at: float | None = None

    def __post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        """``now`` is a monotonic time: a wall clock stepped back by NTP must not starve a feed."""
        tokens = self.burst if self.tokens is None else self.tokens
        if self.at is not None:
            tokens = max(0.0, min(self.burst, tokens + max(0.0, now - self.at) * self.rate))
        self.at, self.tokens = now, tokens
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FloodReport:
    """Counts a feed's drops and unrecorded rejections and writes them as one ``event`` record.

    The record (``event``) is due ``FIRST_REPORT_S`` after the first thing to report and never
    sooner than ``FLOOD_REPORT_S`` after the previous one; a timer writes it even when no message
    follows, and the owner calls :meth:`flush` when the uplink stops. ``details`` adds the feed's
    own fields (the dropped ids, the topics) and is called once per report, after which
    ``reset_details`` clears them.
    """

    def __init__(
        self,
        buffer: Buffer,
        *,
        source: str,
        event: str,
        what: str,
        limit: Callable[[], dict[str, float]],
        details: Callable[[], dict[str, Any]] = dict,
        reset_details: Callable[[], None] = lambda: None,
    ) -> None:
        self.buffer = buffer
        self.source, self.event, self.what = source, event, what
        self._limit, self._details, self._reset_details = limit, details, reset_details
        self.dropped = 0
        self.unrecorded = 0
        self._since_wall = 0.0  # wall time of the first unreported drop or rejection
        self._due: float | None = None  # monotonic time the pending report is due
        self._last_report = float("-inf")  # monotonic
        self._window = float("-inf")  # monotonic start of the rejection-record window
        self._in_window = 0
        self._timer: asyncio.TimerHandle | None = None

    def catch_up(self, now: float, mono: float) -> None:
        """A message arriving after the report fell due writes it first."""
        if self._due is not None and mono >= self._due:
            self.flush(now, mono)

    def drop(self, now: float, mono: float) -> None:
        """One message dropped over the rate limit."""
        self.dropped += 1
        self._pending(now, mono)

    def may_record_rejection(self, now: float, mono: float) -> bool:
        """True when this rejection may have a record of its own; past ``MAX_REJECTED_RECORDS``
        in the window it is only counted in the next report."""
        if mono - self._window >= FLOOD_REPORT_S:
            self._window, self._in_window = mono, 0
        self._in_window += 1
        if self._in_window > MAX_REJECTED_RECORDS:
            self.unrecorded += 1
            self._pending(now, mono)
            return False
        return True

    def _pending(self, now: float, mono: float) -> None:
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
        """Write the pending report now (when due, or the uplink stopping)."""
        now = time.time() if now is None else now
        mono = time.monotonic() if mono is None else mono
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.dropped or self.unrecorded:
            log.warning(
                "uplink: %s flood: %d dropped over the rate limit, %d rejected without a record each",
                self.what,
                self.dropped,
                self.unrecorded,
            )
            payload: dict[str, Any] = {"event": self.event, "dropped": self.dropped}
            payload.update(self._details())
            payload.update(
                {
                    "rejected_not_recorded": self.unrecorded,
                    "since": iso(self._since_wall),
                    "at": iso(now),
                    "limit": self._limit(),
                }
            )
            self.buffer.emit(Record(self.source, Kind.EVENT, payload, ts=now))
            self._last_report = mono
        self._due = None
        self.dropped = self.unrecorded = 0
        self._reset_details()
