"""Settings of cameras and their analytics; geometry in normalised image coordinates (0..1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from config.types import ConfigPath, Duration, Ident, StrictModel

Point = tuple[float, float]
ModelName = Literal["ssdlite_person_300", "nanodet_m_416"]
ObjectClass = Literal["person", "car", "truck", "bus", "motorcycle", "bicycle"]


def check_points(points: list[Point], minimum: int) -> list[Point]:
    """At least ``minimum`` points, each normalised to the image (0..1)."""
    if len(points) < minimum:
        raise ValueError(f"at least {minimum} points [x, y]")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError("coordinates normalised to the image: 0..1 for x and y")
    return points


# Typed default factories: a lambda's list literal would be inferred as list[str] / list[tuple[int, int]].
def _person_only() -> list[ObjectClass]:
    return ["person"]


def _people_and_vehicles() -> list[ObjectClass]:
    return ["person", "car", "truck", "bus", "motorcycle", "bicycle"]


def _whole_frame() -> list[Point]:
    return [(0, 0), (1, 0), (1, 1), (0, 1)]


#: A camera with counting lines defaults to the model and threshold that counted best on the
#: development set (docs/vision.md, "Accuracy of people counting"): SSDLite misses small people.
#: Other cameras (seal, belt, zones) keep the faster SSDLite at 0.5.
#: With NanoDet, a camera that only counts (lines; no zones, seal or belt, which need the whole
#: frame) detects on tiles along its lines by default (``detector.tiles``).
COUNTING_MODEL: ModelName = "nanodet_m_416"
COUNTING_THRESHOLD = 0.35


class DetectorSettings(StrictModel):
    model: ModelName = "ssdlite_person_300"
    #: override the bundled model file (e.g. a site-tuned export with the same outputs)
    model_path: ConfigPath | None = None
    threads: int = Field(default=1, ge=1, le=8)
    score_threshold: float = Field(default=0.5, gt=0, lt=1)
    classes: list[ObjectClass] = Field(default_factory=_person_only)
    #: run the detector on every n-th analysed frame (tracker predicts in between)
    every_n_frames: int = Field(default=1, ge=1, le=30)
    #: detections from this score up to ``score_threshold`` only keep existing tracks alive through
    #: partial occlusion (they never start one); default 0.25 (chosen on the development set)
    low_score_threshold: float = Field(default=0.25, gt=0, lt=1)
    #: ``lines``: detect on square tiles of ``tile_size`` frame pixels along the counting lines
    #: instead of the whole frame squeezed into the network's input, so small far-away people get
    #: more pixels (vision/tiling.py; costs one inference per tile). Only people near a line are seen.
    tiles: Literal["off", "lines"] = "off"
    tile_size: int = Field(default=416, ge=128, le=2048)

    @property
    def floor(self) -> float:
        """The score the detector reports down to (the tracker's second stage)."""
        return min(self.low_score_threshold, self.score_threshold)


class LineSettings(StrictModel):
    """A counting line; "in" is crossing from the left of A→B to its right (see docs/vision.md)."""

    name: Ident
    points: list[Point]
    #: hysteresis band on each side, as a fraction of the image diagonal
    band: float = Field(default=0.02, ge=0, le=0.2)
    shaft: Ident | None = Field(default=None, description="people-underground counter this line feeds")

    _pts = field_validator("points")(lambda cls, v: check_points(v, 2))


class ZoneSettings(StrictModel):
    name: Ident
    polygon: list[Point]
    limit: int = Field(default=10, ge=1, description="alarm at this many people or more")
    debounce_frames: int = Field(default=5, ge=1)
    #: also say when the zone becomes occupied / empty (``zone_presence`` events; hot work uses them)
    presence: bool = False

    _pts = field_validator("polygon")(lambda cls, v: check_points(v, 3))


class SealWindow(StrictModel):
    """Sealed between ``start`` and ``end`` local time (HH:MM); end < start wraps past midnight."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class SealSettings(StrictModel):
    polygon: list[Point] = Field(default_factory=_whole_frame)
    #: empty = sealed all the time (a closed mine)
    schedule: list[SealWindow] = Field(default_factory=list)
    min_frames: int = Field(default=3, ge=1, description="frames an object must be seen before the alarm")
    classes: list[ObjectClass] = Field(default_factory=_people_and_vehicles)
    burst_frames: int = Field(default=4, ge=0, le=20)
    cooldown: Duration = 60.0

    _pts = field_validator("polygon")(lambda cls, v: check_points(v, 3))


class TamperSettings(StrictModel):
    enabled: bool = True
    dark_level: float = Field(default=25.0, ge=0, le=255, description="mean grey below this = covered/dark")
    blur_ratio: float = Field(default=0.25, gt=0, lt=1, description="sharpness below this share of the reference")
    shift_fraction: float = Field(default=0.08, gt=0, lt=1, description="scene shift beyond this share of the width")
    #: consecutive checks without pixel change (at ``interval``: 10 checks × 0.5 s = 5 s)
    frozen_frames: int = Field(default=10, ge=2)
    #: consecutive checks a finding must persist before it is raised or cleared
    debounce_frames: int = Field(default=3, ge=1)
    #: seconds (media time) between checks; tamper needs no 4 fps (0 = every analysed frame)
    interval: Duration = Field(default=0.5, ge=0, le=10)


class BeltSettings(StrictModel):
    polygon: list[Point]
    danger_zone: list[Point] | None = None
    motion_threshold: float = Field(default=4.0, gt=0, description="mean abs frame difference that means moving")
    debounce_frames: int = Field(default=3, ge=1)
    #: JPEG/PNG of the empty belt for load estimation; without it the first still frames are used
    empty_reference: ConfigPath | None = None
    #: seconds (media time) between motion/load checks (0 = every analysed frame); the
    #: person-in-danger-zone check runs on every frame regardless
    interval: Duration = Field(default=0.5, ge=0, le=10)

    _pts = field_validator("polygon")(lambda cls, v: check_points(v, 3))

    @field_validator("danger_zone")
    @classmethod
    def _danger(cls, v: list[Point] | None) -> list[Point] | None:
        return None if v is None else check_points(v, 3)


class CameraSettings(StrictModel):
    """One camera: where frames come from and what is analysed."""

    id: Ident
    url: str = Field(description="rtsp://…, http://…mjpeg, file path, or usb:N")
    enabled: bool = True
    fps: float = Field(default=4.0, gt=0, le=30, description="frames analysed per second")
    role: Literal["shaft", "seal", "belt", "area"] = "area"
    detector: DetectorSettings = DetectorSettings()
    lines: list[LineSettings] = Field(default_factory=list)
    zones: list[ZoneSettings] = Field(default_factory=list)
    seal: SealSettings | None = None
    tamper: TamperSettings = TamperSettings()
    belt: BeltSettings | None = None
    reconnect_max: Duration = 30.0
    #: a worker that produces no heartbeat for this long is considered hung and restarted
    hang_timeout: Duration = 20.0
    jpeg_quality: int = Field(default=80, ge=30, le=95)
    telemetry_interval: Duration = 10.0
    #: a scaled JPEG of what the camera sees at its first frame and then this often (0 = never):
    #: the picture behind counts and the secretly-running alarm between the camera's own alarms
    snapshot_interval: Duration = Field(default=900.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _counting_threshold(cls, data: Any) -> Any:
        """A counting camera without an explicit model gets NanoDet, and with NanoDet and no explicit
        threshold the one chosen on the development set; tiles along the lines if it only counts."""
        if isinstance(data, dict) and data.get("lines"):
            det = dict(data.get("detector") or {})
            det.setdefault("model", COUNTING_MODEL)
            if det["model"] == COUNTING_MODEL:
                det.setdefault("score_threshold", COUNTING_THRESHOLD)
                if not (data.get("zones") or data.get("seal") or data.get("belt")):
                    det.setdefault("tiles", "lines")
            data = {**data, "detector": det}
        return data

    @model_validator(mode="after")
    def _needs(self) -> CameraSettings:
        if self.role == "seal" and self.seal is None:
            raise ValueError("a 'seal:' section for a camera with role seal")
        if self.role == "belt" and self.belt is None:
            raise ValueError("a 'belt:' section for a camera with role belt")
        if self.seal is not None:
            missing = set(self.seal.classes) - set(self.detector.classes)
            if missing:
                raise ValueError(f"detector.classes to include the seal's classes {sorted(missing)}")
        return self


class ShaftSettings(StrictModel):
    """People underground = in − out over the shaft's lines, reconciled daily."""

    name: Ident
    limit: int = Field(default=500, ge=1, description="alarm when more people than this are underground")
    reconcile_at: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


def cross_check(
    cameras: Sequence[CameraSettings], shafts_cfg: Sequence[ShaftSettings]
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Unique camera ids, lines feeding defined shafts, detector classes the model knows."""
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    seen: set[str] = set()
    shafts = {s.name for s in shafts_cfg}
    for i, cam in enumerate(cameras):
        if cam.id in seen:
            problems.append((("cameras", i, "id"), repr(cam.id), "a camera id used once"))
        seen.add(cam.id)
        for j, line in enumerate(cam.lines):
            if line.shaft is not None and line.shaft not in shafts:
                problems.append(
                    (
                        ("cameras", i, "lines", j, "shaft"),
                        repr(line.shaft),
                        f"a shaft defined under 'shafts:' ({sorted(shafts) or 'none defined'})",
                    )
                )
        if cam.detector.model == "ssdlite_person_300" and set(cam.detector.classes) - {"person"}:
            problems.append(
                (
                    ("cameras", i, "detector", "classes"),
                    str(cam.detector.classes),
                    "only person with ssdlite_person_300 (use nanodet_m_416 for vehicles)",
                )
            )
    return problems
