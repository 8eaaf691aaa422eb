"""Counting on real video against a hand-made ground truth; seal, tamper and belt on synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from buffer.record import Kind, Record
from config import load_settings_text
from config.vision import CameraSettings, LineSettings, ZoneSettings
from tests.vision.conftest import MEDIA, read_frames
from vision.analytics import Emit, FrameContext
from vision.analytics.lines import LineCounter
from vision.analytics.zones import ZoneOccupancy
from vision.cli import replay
from vision.pipeline import CameraPipeline
from vision.tracker import Track

DATA = Path(__file__).parent / "data"


class Collect:
    """The records a pipeline or analytic produced (the same Record objects the sink would get)."""

    def __init__(self) -> None:
        self.items: list[tuple[Kind, dict, tuple]] = []
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        self.items.append((record.kind, record.payload, record.attachments))

    def alarms(self, name: str | None = None) -> list[dict]:
        return [p for k, p, _ in self.items if k is Kind.ALARM and (name is None or p.get("alarm") == name)]


def track(tid: int, x: float, y: float = 300) -> Track:
    return Track(np.array([x - 10, y - 60, x + 10, y], dtype=float), "person", 0.9, id=tid)


def ctx(tracks: list[Track], frame: np.ndarray | None = None) -> FrameContext:
    return FrameContext(frame if frame is not None else np.zeros((480, 640, 3), np.uint8), 0.0, 0, tracks, True)


def test_line_hysteresis_counts_a_lingerer_once() -> None:
    out = Collect()
    counter = LineCounter(LineSettings(name="l", points=[(0.5, 0.0), (0.5, 1.0)], band=0.02, shaft="main"), Emit("cam", out))
    # walks right across, then dithers on the line, then stays right
    for x in [250, 280, 300, 340, 330, 318, 322, 316, 324, 360, 400]:
        counter.process(ctx([track(1, x)]))
    assert counter.counts == {"in": {"person": 1}, "out": {}}
    for x in [360, 300, 250]:  # walks back: one "out"
        counter.process(ctx([track(1, x)]))
    assert counter.counts == {"in": {"person": 1}, "out": {"person": 1}}
    # each crossing is one event naming its shaft: what rules/headcount.py sums per shaft
    events = [(r.source, r.payload) for r in out.records if r.payload.get("event") == "line_crossing"]
    assert [(src, p["direction"], p["shaft"], p["line"], p["class"]) for src, p in events] == [
        ("cam", "in", "main", "l", "person"),
        ("cam", "out", "main", "l", "person"),
    ]
    assert [r.kind for r in out.records] == [Kind.EVENT, Kind.EVENT]  # no worker-level headcount or alarm


def test_zone_alarm_debounce_and_clear_event() -> None:
    out = Collect()
    zone = ZoneOccupancy(
        ZoneSettings(name="z", polygon=[(0, 0), (1, 0), (1, 1), (0, 1)], limit=3, debounce_frames=2), Emit("cam", out)
    )
    many = [track(i, 100 + 40 * i) for i in range(4)]
    zone.process(ctx(many[:3]))
    assert out.alarms() == []  # one frame at the limit is not enough
    zone.process(ctx(many[:3]))
    assert out.alarms()[-1]["state"] == "raised" and out.alarms()[-1]["count"] == 3
    zone.process(ctx(many[:1]))
    zone.process(ctx(many[:1]))
    assert out.alarms()[-1]["state"] == "cleared"
    assert any(p.get("event") == "occupancy_clear" for _, p, _ in out.items)


def test_counting_accuracy_on_real_video_against_hand_ground_truth() -> None:
    truth = json.loads((DATA / "vtest_ground_truth.json").read_text())
    settings = load_settings_text((DATA / "vtest.yaml").read_text())
    # the shipped counting configuration: NanoDet at 0.35, 4 analysed frames per second (the tracker's
    # motion model is tuned per analysed frame at 4 fps: docs/vision.md)
    cam = settings.cameras[0].model_copy(
        update={
            "fps": 4.0,
            "detector": settings.cameras[0].detector.model_copy(update={"model": "nanodet_m_416", "score_threshold": 0.35}),
        }
    )
    summary = replay(cam, str(MEDIA / "vtest.avi"), max_frames=truth["frames"][1])
    counts = summary["lines"]["mid"]
    got_in, got_out = counts["in"].get("person", 0), counts["out"].get("person", 0)
    # Real video, hand truth 6 in / 8 out; measured 6 / 7 (a far-side walker missed).
    # Held to today's result: in within 1, out within 2, at most 2 crossings wrong in all
    # (issue 12's target is ±1 per direction: the accuracy work tightens this to that).
    assert abs(got_in - truth["in"]) <= 1, counts
    assert abs(got_out - truth["out"]) <= 2, counts
    assert abs(got_in - truth["in"]) + abs(got_out - truth["out"]) <= 2, counts
    # the plaza has no hand truth (docs/vision.md: zone occupancy is bounded, not measured): some
    # people, never a crowd — by eye at most a dozen are ever on the plaza in frames 0–399
    assert 3 <= summary["zones"]["plaza"]["peak"] <= 12, summary["zones"]


def seal_scene(person: np.ndarray, with_person: bool) -> list[np.ndarray]:
    """tree.avi (a real, moving, empty scene) with a person cut from person.jpg walking in."""
    frames = []
    crop = person[90:385, 170:280]
    for i, bg in enumerate(read_frames("tree.avi", 40)):
        frame = cv2.resize(bg, (640, 480))
        if with_person and i >= 15:
            x = 100 + 8 * (i - 15)
            frame[150:445, x : x + 110] = crop
        frames.append(frame)
    return frames


def seal_camera(schedule: list | None = None) -> CameraSettings:
    return CameraSettings.model_validate(
        {
            "id": "cam-seal",
            "url": "x",
            "role": "seal",
            "tamper": {"enabled": False},
            "detector": {"model": "ssdlite_person_300", "score_threshold": 0.5},
            "seal": {
                "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                "min_frames": 3,
                "burst_frames": 3,
                "classes": ["person"],
                "schedule": schedule or [],
            },
        }
    )


def test_seal_breach_alarm_with_jpeg_evidence(person_image: np.ndarray) -> None:
    out = Collect()
    pipe = CameraPipeline(seal_camera(), out)
    for i, frame in enumerate(seal_scene(person_image, with_person=True)):
        pipe.process(frame, 1_800_000_000.0 + i)
    breaches = [(p, a) for k, p, a in out.items if k is Kind.ALARM and p["alarm"] == "seal_breach"]
    assert len(breaches) == 1  # one alarm, then the cooldown
    record = next(r for r in out.records if r.kind is Kind.ALARM)  # the Record the sink gets, as built
    # in from frame 15, confirmed by the tracker on its 3rd detection (17), seen 3 frames → 19
    assert record.source == "cam-seal" and record.ts == 1_800_000_019.0
    payload, attachments = breaches[0]
    assert payload["classes"] == ["person"] and payload["frames_seen"] == 3 and payload["objects"] == 1
    names = [a.name for a in attachments]
    assert names == ["snapshot.jpg", "burst-0.jpg", "burst-1.jpg"]
    snap = cv2.imdecode(np.frombuffer(attachments[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert snap.shape == (480, 640, 3)
    assert (np.abs(snap.astype(int) - [0, 0, 255]).sum(axis=2) < 120).sum() > 200  # red boxes drawn


def test_no_seal_alarm_on_an_empty_moving_scene_or_outside_the_schedule(person_image: np.ndarray) -> None:
    out = Collect()
    pipe = CameraPipeline(seal_camera(), out)
    for i, frame in enumerate(seal_scene(person_image, with_person=False)):
        pipe.process(frame, 1_800_000_000.0 + i)
    assert out.alarms() == []
    out2 = Collect()
    import time as _t

    now = _t.localtime(1_800_000_000.0)
    start = f"{(now.tm_hour + 2) % 24:02d}:00"
    end = f"{(now.tm_hour + 3) % 24:02d}:00"
    pipe = CameraPipeline(seal_camera([{"start": start, "end": end}]), out2)
    for i, frame in enumerate(seal_scene(person_image, with_person=True)):
        pipe.process(frame, 1_800_000_000.0 + i)
    assert out2.alarms() == []


def tamper_camera() -> CameraSettings:
    return CameraSettings.model_validate({"id": "cam-t", "url": "x", "tamper": {"frozen_frames": 6, "debounce_frames": 2}})


def spoiler(kind: str, vtest_frames: list[np.ndarray]) -> Any:
    h, w = vtest_frames[0].shape[:2]

    def spoil(f: np.ndarray) -> np.ndarray:
        if kind == "covered":
            return (f * 0.05).astype(np.uint8)
        if kind == "blurred":
            return cv2.GaussianBlur(f, (41, 41), 0)
        if kind == "moved":
            return cv2.warpAffine(f, np.array([[1, 0, 0.25 * w], [0, 1, 0.1 * h]], dtype=np.float32), (w, h))
        return vtest_frames[20]

    return spoil


@pytest.mark.parametrize("kind", ["covered", "blurred", "moved", "frozen"])
def test_tamper_raised_and_cleared(vtest_frames: list[np.ndarray], kind: str) -> None:
    """Frames 1 s apart (every frame checked): spoilt frames 12–23, normal again from 24."""
    out = Collect()
    pipe = CameraPipeline(tamper_camera(), out)
    spoil = spoiler(kind, vtest_frames)
    frames = vtest_frames[:12] + [spoil(f) for f in vtest_frames[20:32]] + vtest_frames[32:44]
    for i, f in enumerate(frames):
        pipe.process(f, float(i))
    # raised on the 2nd spoilt check (debounce 2); frozen needs 6 still checks first; cleared on the 2nd normal one
    raised_at = 12 + 6 + 1 if kind == "frozen" else 13
    got = [(r.ts, r.payload["kind"], r.payload["state"]) for r in out.records if r.kind is Kind.ALARM]
    assert got == [(raised_at, kind, "raised"), (25.0, kind, "cleared")]


@pytest.mark.parametrize("kind", ["covered", "moved"])
def test_tamper_checks_at_its_cadence_and_alarms_within_a_second(vtest_frames: list[np.ndarray], kind: str) -> None:
    """Shipped settings: 4 fps analysed, tamper checked at 2 Hz, debounce 3 → raised 1.0 s after the change."""
    out = Collect()
    cam = CameraSettings.model_validate({"id": "cam-t", "url": "x", "fps": 4})
    assert cam.tamper.interval == 0.5 and cam.tamper.debounce_frames == 3
    pipe = CameraPipeline(cam, out)
    spoil = spoiler(kind, vtest_frames)
    frames = vtest_frames[:24] + [spoil(f) for f in vtest_frames[24:48]]
    for i, f in enumerate(frames):
        pipe.process(f, 100.0 + i / 4)
    assert pipe.tamper is not None and pipe.tamper.checks == len(frames) // 2
    changed = 100.0 + 24 / 4
    got = [(r.ts - changed, r.payload["kind"], r.payload["state"]) for r in out.records if r.kind is Kind.ALARM]
    assert got == [(1.0, kind, "raised")]


def belt_frames(moving: bool, load: float, n: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    texture = rng.integers(60, 200, (480, 1280), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 0)
    frames = []
    for i in range(n):
        shift = 12 * i if moving else 0
        grey = np.roll(texture, shift, axis=1)[:, :640].copy()
        if load:
            cols = int(640 * load)
            grey[180:300, :cols] = 20  # dark coal on the belt
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        frames.append(frame)
    return frames


def belt_camera() -> CameraSettings:
    return CameraSettings.model_validate(
        {
            "id": "cam-belt",
            "url": "x",
            "role": "belt",
            "tamper": {"enabled": False},
            "belt": {
                "polygon": [[0, 0.375], [1, 0.375], [1, 0.625], [0, 0.625]],
                "debounce_frames": 2,
                "danger_zone": [[0, 0], [1, 0], [1, 1], [0, 1]],
            },
        }
    )


def test_belt_running_state_and_load_level() -> None:
    out = Collect()
    pipe = CameraPipeline(belt_camera(), out)
    frames = belt_frames(False, 0) + belt_frames(True, 0.0) + belt_frames(True, 0.5) + belt_frames(False, 0.5)
    loads = []
    for i, f in enumerate(frames):
        pipe.process(f, float(i))
        loads.append(pipe.belt.load)
    # frames 1 s apart: the first check says stopped; moving from frame 13 (12 is the unshifted
    # texture), debounce 2 → running at 14; still from 37 → stopped at 38
    states = [(r.ts, r.payload["state"]) for r in out.records if r.payload.get("event") == "belt_state"]
    assert states == [(1.0, "stopped"), (14.0, "running"), (38.0, "stopped")]
    assert loads[:12] == [0.0] * 12  # empty, still belt = the reference
    assert max(loads[12:24]) < 1.0  # empty and running: only the texture's edges differ
    assert all(49.5 <= x <= 51 for x in loads[24:]), loads[24:]  # coal over exactly half the belt


def test_person_near_running_belt_alarm(person_image: np.ndarray) -> None:
    out = Collect()
    pipe = CameraPipeline(belt_camera(), out)
    crop = cv2.resize(person_image[90:385, 170:280], (80, 215))
    for i, f in enumerate(belt_frames(False, 0, 6) + belt_frames(True, 0, 10)):
        f[200:415, 300:380] = crop
        pipe.process(f, float(i))
    # running from frame 8 (moving from 7, debounce 2); the person stands in the zone all along
    states = [(r.ts, r.payload["state"]) for r in out.records if r.payload.get("alarm") == "person_near_running_belt"]
    assert states == [(8.0, "raised")]
