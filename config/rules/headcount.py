"""Settings of the people-underground rule (``rules.headcount``); see docs/rules.md.

The shafts themselves (name, ``limit``, ``reconcile_at``) and which camera lines feed them stay
under ``shafts:`` and ``cameras[].lines[].shaft``; this section adds what only the rule needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from config.types import Duration, Ident, StrictModel


class ExternalCount(StrictModel):
    """A personnel-positioning system's count of people underground, read as a telemetry point."""

    shaft: Ident = Field(description="the shaft (under 'shafts:') this count is compared with")
    device: Ident = Field(description="device id under 'devices:' whose telemetry carries the count")
    point: str = Field(min_length=1, description="the point name in that device's telemetry")
    tolerance: int = Field(default=2, ge=0, description="persons of difference that are not a mismatch")
    for_: Duration = Field(default=300.0, alias="for", description="a mismatch must last this long to alarm")
    max_age: Duration = Field(default=900.0, description="a value older than this is unknown (> the point's max_silent)")


class HeadcountRules(StrictModel):
    """``rules.headcount``: counting is on whenever a shaft has lines; these refine it."""

    #: IANA zone of the site (e.g. Asia/Shanghai) for ``reconcile_at``; empty = the gateway's local zone
    timezone: str | None = None
    #: persons below the limit the count must fall to before over_limit clears (negative clears at ≥ 0)
    hysteresis: int = Field(default=2, ge=1)
    external: list[ExternalCount] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"an IANA time zone such as Asia/Shanghai (not {v!r})") from None
        return v or None


def cross_check(
    rules: HeadcountRules, shafts: list[str], devices: Mapping[str, set[str]]
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """External counts name a defined shaft, a defined device and one of its points
    (``devices``: device id -> point names, profile points included)."""
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, ext in enumerate(rules.external):
        where = ("rules", "headcount", "external", i)
        if ext.shaft not in shafts:
            problems.append(
                ((*where, "shaft"), repr(ext.shaft), f"a shaft defined under 'shafts:' ({sorted(shafts) or 'none defined'})")
            )
        if ext.device not in devices:
            problems.append(
                ((*where, "device"), repr(ext.device), f"a device id under 'devices:' ({sorted(devices) or 'none defined'})")
            )
        elif ext.point not in devices[ext.device]:
            problems.append(
                (
                    (*where, "point"),
                    repr(ext.point),
                    f"a point of device {ext.device!r} (its points and its profile's): {sorted(devices[ext.device])}",
                )
            )
    return problems
