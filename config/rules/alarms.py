"""Settings of the alarm manager (``rules.alarms``): severities, deadlines, escalation."""

from __future__ import annotations

import re
import zoneinfo
from typing import Literal

from pydantic import Field, field_validator

from config.types import Duration, StrictModel

Severity = Literal["immediate", "same_day"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class AlarmRules(StrictModel):
    """The life of an alarm on the gateway (docs/rules.md, "Alarm life")."""

    enabled: bool = True
    #: Severity per alarm type, overriding the alarm's own ``severity`` and the defaults
    #: (seal / intrusion / over_limit / secretly_running / mains_lost: immediate; others same_day).
    severity: dict[str, Severity] = Field(default_factory=dict)
    #: An immediate alarm must be acknowledged within this long after it was raised.
    immediate_ack_within: Duration = Field(default=15 * 60.0, gt=0)
    #: A same-day alarm must be acknowledged by this site time (HH:MM) on the day it was raised.
    same_day_ack_by: str = "23:59"
    #: Site time zone for ``same_day_ack_by`` (IANA name).
    timezone: str = "Asia/Shanghai"
    #: After a missed deadline, re-announce this often until acknowledged.
    immediate_repeat: Duration = Field(default=15 * 60.0, gt=0)
    same_day_repeat: Duration = Field(default=3600.0, gt=0)
    #: Who each escalation level is for (level 1 = the first missed deadline); the last repeats.
    escalate_to: list[str] = Field(default_factory=lambda: ["shift_supervisor", "mine_manager", "safety_director"], min_length=1)
    #: ``close`` is refused for an alarm nobody has acknowledged.
    require_ack_before_close: bool = True
    #: Alarm types whose source never sends ``cleared`` (one-shot events such as a seal breach):
    #: these may be closed while their condition reads active. Every other alarm is refused
    #: ``close`` while its condition is active (it would vanish while the cause goes on).
    close_while_active: list[str] = Field(
        default_factory=lambda: ["seal_breach", "gateway_dark_while_site_ran", "buffer_corrupt"]
    )
    #: How many recent accepted command ids are kept for idempotency (oldest forgotten first) ...
    recent_commands: int = Field(default=1000, ge=10, le=100_000)
    #: ... but an id younger than this is kept even beyond ``recent_commands`` (up to 10x it), so
    #: a redelivery within a day cannot act twice.
    remember_commands_for: Duration = Field(default=24 * 3600.0, ge=0)
    #: Rejected command ids are kept apart (so junk cannot push real ids out), this many at most.
    recent_rejected: int = Field(default=1000, ge=10, le=100_000)

    @field_validator("same_day_ack_by")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("a site time as HH:MM, e.g. 23:59")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"an IANA time zone such as Asia/Shanghai ({value!r} is unknown)") from None
        return value
