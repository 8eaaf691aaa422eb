"""Hot-work permits: what one is, and how a ``permit`` command's arguments are checked.

Pure data and functions (no I/O, no clock reads): the rule (``rules.hotwork``) calls them with
the engine's ``now``. A permit command comes from the platform or the local socket and is
treated as hostile: every field is checked and a refusal names the field and what it expected.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from config.rules.hotwork import HotworkRules
from config.types import Duration
from rules.alarm_life import iso

_DURATION: TypeAdapter[float] = TypeAdapter(Duration)
#: a permit may start at most this long before the command arrived (clock skew, slow links)
BACKDATE_S = 300.0
#: times a permit may name at all (UTC 2000-01-01 .. 2100-01-01): beyond them formatting the
#: time for a reply would overflow, and no real permit lies there
EARLIEST_TS, LATEST_TS = 946_684_800.0, 4_102_444_800.0
ARGS = frozenset({"number", "issuer", "start", "end", "duration"})


class PermitRefused(ValueError):
    """A permit command that must not be applied; ``str()`` names the field and the fix."""


@dataclass
class Permit:
    """One permit, from the config (``origin: config``) or a command (``origin: mqtt|cli``)."""

    zone: str
    number: str
    issuer: str
    start: float
    end: float
    origin: str
    command: str | None = None  # the command id that created it
    status: str = "pending"  # pending | active | ended | revoked (never started)
    ended_at: float | None = None  # when it ended (its end, or the revocation)
    revoked_by: str | None = None

    @property
    def key(self) -> str:
        return f"{self.zone}/{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Permit:
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    def public(self) -> dict[str, Any]:
        """What the events and replies show."""
        return {
            "zone": self.zone,
            "number": self.number,
            "issuer": self.issuer,
            "from": iso(self.start),
            "until": iso(self.end),
            "origin": self.origin,
            "status": self.status,
            **({"command": self.command} if self.command else {}),
        }


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 64 or not value.isprintable():
        raise PermitRefused(f"args.{key}: a printable string of 1-64 characters is required")
    return value.strip()


def _time(value: Any, key: str, cfg: HotworkRules) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise PermitRefused(f"args.{key}: an ISO 8601 time such as 2026-11-25T08:00:00+08:00 (no offset = site time)")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PermitRefused(f"args.{key}: {value[:40]!r} is not an ISO 8601 time such as 2026-11-25T08:00:00+08:00") from None
    try:
        if when.tzinfo is None:
            when = when.replace(tzinfo=zoneinfo.ZoneInfo(cfg.timezone))
        ts = when.timestamp()
    except (OverflowError, ValueError, OSError):
        ts = math.nan
    if not EARLIEST_TS <= ts <= LATEST_TS:
        raise PermitRefused(f"args.{key}: {value!r} is outside the years 2000-2099 a permit can name")
    return ts


def parse_permit(zone: str, args: Any, origin: str, cid: str, now: float, cfg: HotworkRules) -> Permit:
    """The permit a command asks for, or :class:`PermitRefused` naming the bad field.

    Never raises anything else: a hostile command must get a reply, not stop the rule."""
    try:
        return _parse(zone, args, origin, cid, now, cfg)
    except PermitRefused:
        raise
    except (OverflowError, ValueError, OSError, TypeError) as exc:
        raise PermitRefused(f"args: cannot be read as a permit ({type(exc).__name__}: {str(exc)[:80]})") from None


def _parse(zone: str, args: Any, origin: str, cid: str, now: float, cfg: HotworkRules) -> Permit:
    if not isinstance(args, dict):
        raise PermitRefused("args: an object {number, issuer, start?, end | duration} is required")
    extra = sorted(set(map(str, args)) - ARGS)
    if extra:
        raise PermitRefused(f"args: unknown key(s) {', '.join(k[:20] for k in extra[:5])}; allowed: {', '.join(sorted(ARGS))}")
    number, issuer = _text(args, "number"), _text(args, "issuer")
    start = _time(args["start"], "start", cfg) if "start" in args else now
    if ("end" in args) == ("duration" in args):
        raise PermitRefused("args.end / args.duration: give exactly one of them")
    if "end" in args:
        end = _time(args["end"], "end", cfg)
    else:
        raw = args["duration"]
        try:
            seconds = _DURATION.validate_python(raw)
        except ValidationError:
            raise PermitRefused("args.duration: a duration such as 2h, 90m or 5400 (seconds)") from None
        if not math.isfinite(seconds):
            raise PermitRefused("args.duration: a finite duration")
        if seconds > cfg.max_permit:  # before any arithmetic or formatting with it
            raise PermitRefused(
                f"args.duration: {seconds / 3600:.6g} h is longer than rules.hotwork.max_permit "
                f"({cfg.max_permit / 3600:.1f} h); split it into several permits"
            )
        end = start + seconds
    if not (math.isfinite(start) and math.isfinite(end)):
        raise PermitRefused("args.start / args.end: finite times")
    if end <= start:
        raise PermitRefused(f"args.end: {iso(end)} is not after args.start {iso(start)}")
    if end - start > cfg.max_permit:
        raise PermitRefused(
            f"args.end: a permit of {(end - start) / 3600:.1f} h is longer than rules.hotwork.max_permit "
            f"({cfg.max_permit / 3600:.1f} h); split it into several permits"
        )
    if start < now - BACKDATE_S:
        raise PermitRefused(f"args.start: {iso(start)} is in the past; a permit cannot allow work that already happened")
    if start > now + cfg.max_advance:
        raise PermitRefused(
            f"args.start: {iso(start)} is more than rules.hotwork.max_advance ({cfg.max_advance / 86400:.1f} d) ahead"
        )
    if end - start < cfg.min_permit:
        raise PermitRefused(
            f"args.end: a permit of {end - start:.0f} s is shorter than rules.hotwork.min_permit ({cfg.min_permit:.0f} s)"
        )
    return Permit(zone, number, issuer, start, end, origin, command=cid)


def overlapping(permit: Permit, others: list[Permit]) -> Permit | None:
    """A live (not ended, not revoked) permit of the same zone whose time overlaps ``permit``'s."""
    for other in others:
        if other.zone != permit.zone or other.status in ("ended", "revoked"):
            continue
        if permit.start < other.end and other.start < permit.end:
            return other
    return None
