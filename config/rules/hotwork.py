"""Settings of hot work (``rules: hotwork:``): zones near a wellhead, permits, evidence clips.

A hot-work zone is a polygon on one camera. A person in it outside a permit is an alarm; while a
permit runs, and for ``tail`` after it, that camera records evidence clips. Permits come from
this file (planned work) or as inbound ``permit`` commands. Everything a zone names is checked
in ``cross_check`` so a typo is refused at load time, with its line.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.types import ByteSize, Duration, Ident, StrictModel
from config.vision import CameraSettings, Point, ZoneSettings, check_points

#: the camera zone vision runs for a hot-work zone is named ``hotwork-<zone>``
ZONE_PREFIX = "hotwork-"


class PermitWindow(StrictModel):
    """A planned permit; naive times are site time (``rules.hotwork.timezone``)."""

    number: str = Field(min_length=1, max_length=64)
    issuer: str = Field(min_length=1, max_length=64)
    start: dt.datetime = Field(alias="from")
    until: dt.datetime

    @model_validator(mode="after")
    def _order(self) -> PermitWindow:
        if (self.start.tzinfo is None) != (self.until.tzinfo is None):
            raise ValueError("'from' and 'until' both with or both without a UTC offset")
        if self.until <= self.start:
            raise ValueError("'until' after 'from'")
        return self


class HotworkZone(StrictModel):
    """One hot-work zone: which camera sees it, where it is in the picture, its permits."""

    name: Ident
    camera: str
    polygon: list[Point]
    #: evidence keeps recording this long after a permit ends
    tail: Duration = Field(default=3600.0, ge=0, le=24 * 3600.0)
    permits: list[PermitWindow] = Field(default_factory=list)
    #: frames a person must be seen (or not seen) before presence changes
    debounce_frames: int = Field(default=3, ge=1, le=100)
    #: nobody in the zone (or a permit) for this long before the alarm clears
    clear_after: Duration = Field(default=30.0, ge=0)

    _pts = field_validator("polygon")(lambda cls, v: check_points(v, 3))

    def presence_zone(self) -> ZoneSettings:
        """The zone vision counts people in for this hot-work zone (no cross-source logic there)."""
        return ZoneSettings(
            name=f"{ZONE_PREFIX}{self.name}", polygon=self.polygon, debounce_frames=self.debounce_frames, presence=True
        )


class HotworkRules(StrictModel):
    """``rules: hotwork:`` — no zones, nothing runs."""

    timezone: str = "Asia/Shanghai"
    zones: list[HotworkZone] = Field(default_factory=list)
    #: the longest permit accepted (config or command)
    max_permit: Duration = Field(default=12 * 3600.0, gt=0, le=7 * 86400.0)
    #: the shortest permit a command may ask for (a flood of 1-second permits is refused)
    min_permit: Duration = Field(default=300.0, ge=1, le=3600.0)
    #: live (pending or active) permits per zone at most; a command beyond it is refused
    max_live_permits: int = Field(default=50, ge=1, le=10_000)
    #: a command permit may start at most this far ahead
    max_advance: Duration = Field(default=7 * 86400.0, ge=0)
    #: length of one evidence clip
    segment: Duration = Field(default=60.0, ge=5, le=600)
    #: mp4 (MPEG-4 part 2, ~4 MB/min at 768x576, 4 fps) or avi (MJPEG, ~18 MB/min, survives a kill)
    clip_format: Literal["mp4", "avi"] = "mp4"
    #: clips one camera keeps at most; the oldest are deleted (each deletion a chained record).
    #: None (default): no budget, clips are kept as long as the free-space floor allows — the
    #: rules want hot-work video kept a year, so only the buffer's need for disk removes them.
    clip_budget: ByteSize | None = Field(default=None, ge=16 * 1024**2)
    #: free space the clips always leave on the buffer's disk (the buffer needs it more than video)
    clip_min_free: ByteSize = Field(default=1024**3, ge=0)
    #: how many recent permit command ids are kept for idempotency
    recent_commands: int = Field(default=1000, ge=10, le=100_000)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Asia/Shanghai (the tzdata package provides them)") from None
        return value

    def epoch(self, when: dt.datetime) -> float:
        """Epoch seconds; a naive time is site time."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=zoneinfo.ZoneInfo(self.timezone))
        return when.timestamp()

    def zones_of(self, camera: str) -> list[ZoneSettings]:
        """The presence zones vision runs on ``camera`` for hot work."""
        return [z.presence_zone() for z in self.zones if z.camera == camera]


Problem = tuple[tuple[str | int, ...], str, str]


def cross_check(hot: HotworkRules, cameras: Sequence[CameraSettings]) -> list[Problem]:
    """Cameras exist and are enabled, zone names are unique, permits are short enough and do not overlap."""
    problems: list[Problem] = []
    cams = {c.id: c for c in cameras}
    base: tuple[str | int, ...] = ("rules", "hotwork", "zones")
    names: set[str] = set()
    for i, zone in enumerate(hot.zones):
        if zone.name in names:
            problems.append(((*base, i, "name"), repr(zone.name), "a hot-work zone name used once"))
        names.add(zone.name)
        cam = cams.get(zone.camera)
        if cam is None:
            problems.append(((*base, i, "camera"), repr(zone.camera), f"a camera id from cameras: {sorted(cams)}"))
        elif not cam.enabled:
            problems.append(((*base, i, "camera"), f"{zone.camera!r} (disabled)", "an enabled camera: it records the evidence"))
        elif f"{ZONE_PREFIX}{zone.name}" in {z.name for z in cam.zones}:
            problems.append(
                (
                    (*base, i, "name"),
                    repr(zone.name),
                    f"a name whose zone {ZONE_PREFIX}{zone.name} is not already a zone of {cam.id}",
                )
            )
        spans = [(hot.epoch(p.start), hot.epoch(p.until)) for p in zone.permits]
        for j, (a0, a1) in enumerate(spans):
            loc = (*base, i, "permits", j)
            if a1 - a0 > hot.max_permit:
                problems.append(
                    (
                        loc,
                        f"a permit of {(a1 - a0) / 3600:.1f} h",
                        f"at most rules.hotwork.max_permit ({hot.max_permit / 3600:.1f} h)",
                    )
                )
            for k, (b0, b1) in enumerate(spans[:j]):
                if a0 < b1 and b0 < a1:
                    other = zone.permits[k]
                    problems.append(
                        (
                            loc,
                            f"permit {zone.permits[j].number!r} overlaps permit {other.number!r} (permits[{k}])",
                            "permits of one zone that do not overlap (merge them or move one)",
                        )
                    )
    return problems
