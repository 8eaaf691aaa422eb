"""One alarm's life: identity, severity, deadlines and the allowed state transitions.

Pure data and functions (no I/O, no clock reads): the alarm manager (``rules.alarms``) calls
them with the engine's ``now``, so a replay of the same records gives the same life.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any

from config.rules.alarms import AlarmRules

#: Words in an alarm type that make it immediate unless configured otherwise.
IMMEDIATE_WORDS = ("seal", "intrusion", "over_limit", "secretly_running", "mains_lost")
#: Payload keys naming the alarm's subject, in order of preference, for an id built here.
SUBJECT_KEYS = ("zone", "line", "shaft")

#: Handling progress, in order. ``cleared`` is shown instead while the condition is gone.
PROGRESS = ("raised", "acknowledged", "handled")


def iso(ts: float) -> str:
    """UTC ISO-8601 with milliseconds, the format of every record's ``ts``; a time no datetime
    can hold (hostile input) is shown as its epoch seconds instead: never raises."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{ts:.6g} s since 1970"


def alarm_id(source: str, payload: dict[str, Any]) -> str:
    """The payload's ``id``, else ``<source>:<type>[:<zone|line|shaft>]``."""
    given = payload.get("id")
    if isinstance(given, str) and given:
        return given
    parts = [source, str(payload.get("alarm"))]
    for key in SUBJECT_KEYS:
        value = payload.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            parts.append(str(value))
            break
    return ":".join(parts)


def severity_of(kind: str, payload: dict[str, Any], cfg: AlarmRules) -> str:
    """Config per type first, then the alarm's own ``severity``, then the defaults."""
    if kind in cfg.severity:
        return cfg.severity[kind]
    given = payload.get("severity")
    if given in ("immediate", "same_day"):
        return str(given)
    return "immediate" if any(word in kind for word in IMMEDIATE_WORDS) else "same_day"


def ack_deadline(severity: str, raised_at: float, cfg: AlarmRules) -> float:
    """When an acknowledgement is due: raised + N min (immediate), or HH:MM site time that day
    (same_day; the next day's if the alarm came after that time)."""
    if severity == "immediate":
        return raised_at + cfg.immediate_ack_within
    tz = zoneinfo.ZoneInfo(cfg.timezone)
    local = dt.datetime.fromtimestamp(raised_at, tz)
    hh, mm = (int(x) for x in cfg.same_day_ack_by.split(":"))
    due = local.replace(hour=hh, minute=mm, second=59, microsecond=0)
    if due.timestamp() <= raised_at:
        due = (local + dt.timedelta(days=1)).replace(hour=hh, minute=mm, second=59, microsecond=0)
    return due.timestamp()


def repeat_every(severity: str, cfg: AlarmRules) -> float:
    return cfg.immediate_repeat if severity == "immediate" else cfg.same_day_repeat


@dataclass
class Alarm:
    """An open alarm as the gateway keeps it (``snapshot()`` stores these as dicts)."""

    id: str
    type: str
    severity: str
    source: str
    raised_at: float
    due: float  # next re-announcement time while unacknowledged
    progress: str = "raised"  # raised | acknowledged | handled
    active: bool = True  # False once the condition cleared
    shows_cleared: bool = False  # state reads "cleared" until an operator or a re-raise moves it
    raised_count: int = 1
    reannounced: int = 0
    level: int = 0  # escalation level (0 = not escalated)
    last: dict[str, Any] = field(default_factory=dict)  # the last alarm payload seen
    by: dict[str, str] = field(default_factory=dict)  # who acknowledged / handled

    @property
    def state(self) -> str:
        return "cleared" if self.shows_cleared else self.progress

    @property
    def acked(self) -> bool:
        return self.progress != "raised"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Alarm:
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    def public(self) -> dict[str, Any]:
        """What ``headframe alarms list`` and the events show."""
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "state": self.state,
            "source": self.source,
            "raised_at": iso(self.raised_at),
            "condition": "active" if self.active else "cleared",
            "raised_count": self.raised_count,
            "reannounced": self.reannounced,
            "escalation_level": self.level,
            "by": dict(self.by),
        }


def command_problem(alarm: Alarm, command: str, cfg: AlarmRules) -> str | None:
    """Why ``command`` may not move ``alarm`` now, or None when it may."""
    if command == "ack":
        return None if not alarm.acked else f"alarm {alarm.id} is already {alarm.progress}"
    if command == "handle":
        if not alarm.acked:
            return f"alarm {alarm.id} must be acknowledged before it is handled"
        return None if alarm.progress == "acknowledged" else f"alarm {alarm.id} is already handled"
    if command == "close":
        if cfg.require_ack_before_close and not alarm.acked:
            return f"alarm {alarm.id} must be acknowledged before it is closed (rules.alarms.require_ack_before_close)"
        if alarm.active and alarm.type not in cfg.close_while_active:
            # closed now, it would be gone while its cause goes on: the source raises only on a change
            return f"alarm {alarm.id}: its condition is still active; handle it; it can be closed when the condition clears"
        return None
    return f"command {command!r} does not apply to alarms"


def occurrence_problem(alarm: Alarm, args: Any) -> str | None:
    """Why a command bound to an occurrence (``args.raised_at`` / ``args.raised_count``, as in
    the alarm_state events) does not fit the alarm open now, or None (also when not bound)."""
    if not isinstance(args, dict):
        return None
    at, count = args.get("raised_at"), args.get("raised_count")
    if at is not None and at != iso(alarm.raised_at):
        return (
            f"args.raised_at {str(at)[:40]!r} is an earlier occurrence; "
            f"alarm {alarm.id} open now was raised at {iso(alarm.raised_at)}"
        )
    if count is not None and (isinstance(count, bool) or count != alarm.raised_count):  # true is not 1
        return f"args.raised_count {str(count)[:20]!r} does not match alarm {alarm.id} (raised {alarm.raised_count} time(s))"
    return None


#: The state a command leads to.
COMMAND_STATE = {"ack": "acknowledged", "handle": "handled", "close": "closed"}
