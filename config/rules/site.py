"""Settings of the site rules (``rules: site:``): declared site state, rectification, belt scale.

A mine that is stopped on paper must not show hoist, belt or crusher activity; this module
declares what "stopped" means per section and which signals prove otherwise. Every reference
to a device point or a camera is checked against ``devices:`` / ``cameras:`` in
``cross_check`` so a typo is named at load time instead of silently never alarming.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.drivers import DeviceSettings, Problem, Profile
from config.types import Duration, Ident, StrictModel
from config.vision import CameraSettings

SectionState = Literal["operating", "stopped", "suspended", "sealed"]
#: ``device.point`` of a configured device (profile points count)
PointRef = str


class Period(StrictModel):
    """A date range (local dates, both ends included) during which a section has a declared state."""

    start: dt.date = Field(alias="from")
    until: dt.date
    state: SectionState

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.until < self.start:
            raise ValueError("'until' on or after 'from'")
        return self


class PowerSignal(StrictModel):
    """A power (or current) point that proves activity when it reads above ``above``."""

    point: PointRef
    above: float = Field(ge=0)


class ActivitySettings(StrictModel):
    """Signals that must not appear while a section is declared stopped/suspended/sealed."""

    power: list[PowerSignal] = Field(default_factory=list)
    #: boolean PLC points (run bits): true = activity
    run_bits: list[PointRef] = Field(default_factory=list)
    #: cameras with a ``belt:`` section: belt running = activity
    belt_cameras: list[str] = Field(default_factory=list)
    #: cameras with a ``seal:`` section: any seal alarm = activity
    seal_cameras: list[str] = Field(default_factory=list)


class SectionSettings(StrictModel):
    """A site or a section of it, its declared state and what proves it is not what it says."""

    name: Ident = "site"
    state: SectionState = "operating"
    #: date ranges that override ``state``; they must not overlap
    schedule: list[Period] = Field(default_factory=list)
    #: loads that keep running in a stopped mine (drainage pumps, main fans, lighting): reported, never alarmed
    expected_loads: list[PointRef] = Field(default_factory=list)
    activity: ActivitySettings = ActivitySettings()
    #: quiet for this long before the alarm clears (hysteresis)
    clear_after: Duration = 120.0
    #: a seal alarm counts as activity for this long
    seal_hold: Duration = 300.0
    #: a reading older than this is stale (a dead meter's last value must not count for ever)
    max_age: Duration = 180.0


class Shift(StrictModel):
    """A named shift in local time; ``end`` before ``start`` runs past midnight."""

    name: Ident
    start: dt.time
    end: dt.time


class RectificationWindow(StrictModel):
    """An approved rectification: dates, shifts and places where work is allowed."""

    name: Ident
    start: dt.date = Field(alias="from")
    until: dt.date
    #: names from ``shifts:``; empty = all day
    shifts: list[str] = Field(default_factory=list)
    #: ``camera.zone`` (an occupancy zone) or ``camera`` (a whole seal camera)
    places: list[str] = Field(min_length=1)
    max_per_place: int = Field(default=9, ge=1)
    #: people in all the places together during a shift; None = no total limit
    max_per_shift: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _order(self) -> RectificationWindow:
        if self.until < self.start:
            raise ValueError("'until' on or after 'from'")
        return self


class BeltScale(StrictModel):
    """A belt scale (t/h) checked against the vision load level of the same belt."""

    name: Ident
    scale: PointRef
    camera: str
    loaded_above_pct: float = Field(default=20.0, ge=0, le=100)
    empty_below_pct: float = Field(default=5.0, ge=0, le=100)
    zero_below: float = Field(default=1.0, ge=0)
    flowing_above: float = Field(default=5.0, ge=0)
    for_: Duration = Field(default=60.0, alias="for")
    max_age: Duration = 180.0


class SiteRules(StrictModel):
    """``rules: site:`` — empty runs nothing."""

    timezone: str = "Asia/Shanghai"
    sections: list[SectionSettings] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)
    rectification: list[RectificationWindow] = Field(default_factory=list)
    belt_scales: list[BeltScale] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Asia/Shanghai (the tzdata package provides them)") from None
        return value


def point_names(devices: Sequence[DeviceSettings], profiles: Mapping[str, Profile]) -> dict[str, set[str]]:
    """device id -> its point names (its own ``points:`` and its profile's)."""
    names: dict[str, set[str]] = {}
    for dev in devices:
        prof = profiles.get(dev.profile) if dev.profile else None
        names[dev.id] = {p.name for p in dev.points} | ({p.name for p in prof.points} if prof else set())
    return names


def _overlaps(periods: Sequence[tuple[dt.date, dt.date]], j: int) -> int | None:
    a0, a1 = periods[j]
    for i in range(j):
        b0, b1 = periods[i]
        if a0 <= b1 and b0 <= a1:
            return i
    return None


def cross_check(
    site: SiteRules, devices: Sequence[DeviceSettings], cameras: Sequence[CameraSettings], profiles: Mapping[str, Profile]
) -> list[Problem]:
    """Every point, camera, zone and shift a site rule names exists; schedules do not conflict."""
    problems: list[Problem] = []
    points = point_names(devices, profiles)
    cams = {c.id: c for c in cameras}
    base = ("rules", "site")

    def point(loc: tuple[str | int, ...], ref: str) -> None:
        dev, _, name = ref.partition(".")
        if dev not in points:
            problems.append((base + loc, repr(ref), f"device.point of a configured device; devices: {sorted(points)}"))
        elif name not in points[dev]:
            problems.append((base + loc, repr(ref), f"a point of device {dev!r}: one of {sorted(points[dev])}"))

    def camera(loc: tuple[str | int, ...], cam_id: str, role: str) -> None:
        cam = cams.get(cam_id)
        if cam is None:
            problems.append((base + loc, repr(cam_id), f"a camera id from cameras: {sorted(cams)}"))
        elif getattr(cam, role) is None:
            problems.append((base + loc, repr(cam_id), f"a camera with a '{role}:' section"))
        elif not cam.enabled:
            problems.append(
                (
                    base + loc,
                    f"{cam_id!r} (enabled: false: the rule would never see it and stay silent)",
                    "an enabled camera; enable it or take it out of this rule",
                )
            )

    seen: set[str] = set()
    for i, sec in enumerate(site.sections):
        if sec.name in seen:
            problems.append(((*base, "sections", i, "name"), repr(sec.name), "a section name used once"))
        seen.add(sec.name)
        spans = [(p.start, p.until) for p in sec.schedule]
        for j in range(len(spans)):
            k = _overlaps(spans, j)
            if k is not None:
                problems.append(
                    (
                        (*base, "sections", i, "schedule", j),
                        f"{spans[j][0]}..{spans[j][1]} overlaps schedule[{k}] ({spans[k][0]}..{spans[k][1]})",
                        "date ranges that do not overlap (one declared state per day)",
                    )
                )
        for j, ref in enumerate(sec.expected_loads):
            point(("sections", i, "expected_loads", j), ref)
        for j, sig in enumerate(sec.activity.power):
            point(("sections", i, "activity", "power", j, "point"), sig.point)
        for j, ref in enumerate(sec.activity.run_bits):
            point(("sections", i, "activity", "run_bits", j), ref)
        for j, cam_id in enumerate(sec.activity.belt_cameras):
            camera(("sections", i, "activity", "belt_cameras", j), cam_id, "belt")
        for j, cam_id in enumerate(sec.activity.seal_cameras):
            camera(("sections", i, "activity", "seal_cameras", j), cam_id, "seal")
    shift_names = [s.name for s in site.shifts]
    for i, shift in enumerate(site.shifts):
        for k, earlier in enumerate(site.shifts[:i]):
            if _shifts_overlap(shift, earlier):
                problems.append(
                    (
                        (*base, "shifts", i),
                        f"shift {shift.name!r} ({shift.start:%H:%M}-{shift.end:%H:%M}) overlaps shift {earlier.name!r} "
                        f"(shifts[{k}], {earlier.start:%H:%M}-{earlier.end:%H:%M})",
                        "shifts that do not overlap (one shift at a time decides the approval)",
                    )
                )
    for i, win in enumerate(site.rectification):
        for j, name in enumerate(win.shifts):
            if name not in shift_names:
                problems.append(
                    ((*base, "rectification", i, "shifts", j), repr(name), f"a shift name from rules.site.shifts: {shift_names}")
                )
        for j, place in enumerate(win.places):
            cam_id, _, zone = place.partition(".")
            cam = cams.get(cam_id)
            loc = (*base, "rectification", i, "places", j)
            if cam is None:
                problems.append((loc, repr(place), f"camera or camera.zone of a configured camera: {sorted(cams)}"))
            elif zone and zone not in {z.name for z in cam.zones}:
                problems.append((loc, repr(place), f"a zone of camera {cam_id!r}: {[z.name for z in cam.zones]}"))
        for k, other in enumerate(site.rectification[:i]):
            if other.name == win.name:
                problems.append(((*base, "rectification", i, "name"), repr(win.name), "a window name used once"))
            same_days = win.start <= other.until and other.start <= win.until
            same_shifts = not win.shifts or not other.shifts or set(win.shifts) & set(other.shifts)
            if same_days and same_shifts and _places_overlap(win.places, other.places):
                problems.append(
                    (
                        (*base, "rectification", i),
                        f"window {win.name!r} overlaps window {other.name!r} "
                        f"(rectification[{k}]) on the same places (a camera and its zones count as the same), dates and shifts",
                        "one approval per place and time (merge the windows or split the dates)",
                    )
                )
    for i, belt in enumerate(site.belt_scales):
        point(("belt_scales", i, "scale"), belt.scale)
        camera(("belt_scales", i, "camera"), belt.camera, "belt")
    return problems


def _minutes(shift: Shift) -> list[tuple[int, int]]:
    """The shift as minute ranges of a day (one past midnight splits in two)."""
    a, b = shift.start.hour * 60 + shift.start.minute, shift.end.hour * 60 + shift.end.minute
    return [(a, b)] if a < b else [(a, 1440), (0, b)]


def _shifts_overlap(x: Shift, y: Shift) -> bool:
    return any(a0 < b1 and b0 < a1 for a0, a1 in _minutes(x) for b0, b1 in _minutes(y))


def _places_overlap(xs: Sequence[str], ys: Sequence[str]) -> bool:
    """Same place, or a whole camera and one of its zones (``cam-a`` and ``cam-a.face-1``)."""
    for x in xs:
        for y in ys:
            if x == y or y.startswith(f"{x}.") or x.startswith(f"{y}."):
                return True
    return False
