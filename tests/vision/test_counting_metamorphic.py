"""Counting must not change when nothing in the scene changed (metamorphic checks, real model).

Two short clips are composited at test time from the committed walker bank (real people cut
from vtest.avi, ``vision.groundtruth``): crossings both ways, a pair, people crossing each other.
Each clip is written as an MJPG file like a camera recording; the variants are made from what
that file decodes to, and every variant runs through the real replay path (decode → detector →
tracker → line counter). Frames with identical bytes are detected once (``CachedDetector``):
the reversed clip reuses the forward detections, everything else runs the network again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from config.vision import CameraSettings, DetectorSettings
from vision.cli import replay
from vision.detector import Detector
from vision.groundtruth import walkers
from vision.groundtruth.__main__ import BANK
from vision.groundtruth.compose import Clip, render
from vision.groundtruth.detcache import CachedDetector
from vision.groundtruth.sets import CHECK, make_clip

MODEL = "nanodet_m_416"  # the default model; its default counting threshold and low score
CLIPS = (1, 2)  # CHECK clips: 2 in / 2 out (a pair, a counterflow) and 2 in / 3 out (two counterflows, a pair)
Counts = dict[str, int]


def write(path: Path, frames: list[np.ndarray], fps: float, fourcc: str = "FFV1", quality: int | None = None) -> str:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"no {fourcc} writer"
    if quality is not None:
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    for f in frames:
        writer.write(f)
    writer.release()
    return str(path)


def decode(path: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def camera(clip: Clip, mirrored: bool = False) -> CameraSettings:
    (ax, ay), (bx, by) = clip.line
    points = [[1 - ax, ay], [1 - bx, by]] if mirrored else [[ax, ay], [bx, by]]
    return CameraSettings.model_validate(
        {
            "id": "cam-check",
            "url": "x",
            "fps": clip.fps,  # every frame analysed: forward and backward see the same frames
            "tamper": {"enabled": False},
            "detector": {"model": MODEL, "threads": 2},
            "lines": [{"name": "l", "points": points}],
        }
    )


def counts(summary: dict[str, Any]) -> Counts:
    return {d: summary["lines"]["l"][d].get("person", 0) for d in ("in", "out")}


def swapped(c: Counts) -> Counts:
    return {"in": c["out"], "out": c["in"]}


VARIANTS: dict[str, Callable[[list[np.ndarray]], list[np.ndarray]]] = {
    "backwards": lambda fs: fs[::-1],
    "mirrored": lambda fs: [np.ascontiguousarray(f[:, ::-1]) for f in fs],
    "darker": lambda fs: [(f.astype(np.float32) * 0.4).astype(np.uint8) for f in fs],
    "noisier": lambda fs: [
        np.clip(f + np.random.default_rng(i).normal(0, 12, f.shape), 0, 255).astype(np.uint8) for i, f in enumerate(fs)
    ],
    "jpeg_q20": lambda fs: [
        cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_COLOR) for f in fs
    ],
}


class Runs:
    """Per clip, on demand: the camera file, its counts and each variant's counts (computed once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.still, self.bank = walkers.load(BANK)
        self.detector = CachedDetector(MODEL, DetectorSettings(model=MODEL).floor)
        self._clips: dict[int, dict[str, Any]] = {}

    def clip(self, index: int) -> dict[str, Any]:
        if index not in self._clips:
            clip, backgrounds = make_clip(CHECK, index, self.bank, self.still)
            rendered = [render(clip, self.bank, backgrounds, f, seed=index) for f in range(clip.frames)]
            original = write(self.folder / f"camera{index}.avi", rendered, clip.fps, "MJPG")  # as a camera recorded it
            self._clips[index] = {"clip": clip, "truth": clip.truth(), "file": original, "decoded": decode(original)}
        return self._clips[index]

    def counts(self, index: int, variant: str = "original") -> Counts:
        r = self.clip(index)
        if variant not in r:
            clip = r["clip"]
            if variant == "original":
                video = r["file"]
            elif variant == "reencoded":
                video = write(self.folder / f"reencoded{index}.avi", r["decoded"], clip.fps, "MJPG", quality=100)
            else:  # lossless, so that only the variant differs from what the camera file decodes to
                video = write(self.folder / f"{variant}{index}.avi", VARIANTS[variant](r["decoded"]), clip.fps)
            if variant != "original":
                self.counts(index)  # forward first: the memo is filled by it
            misses = self.detector.misses
            r[variant] = counts(replay(camera(clip, mirrored=variant == "mirrored"), video, detector=self.detector))
            r[f"{variant}_new_frames"] = self.detector.misses - misses
        return dict(r[variant])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("metamorphic"))


@pytest.mark.parametrize("index", CLIPS)
def test_counts_are_right_on_the_clip(runs: Runs, index: int) -> None:
    assert runs.counts(index) == runs.clip(index)["truth"]


@pytest.mark.parametrize("index", CLIPS)
def test_backwards_swaps_in_and_out_exactly(runs: Runs, index: int) -> None:
    backwards = runs.counts(index, "backwards")
    assert runs.clip(index)["backwards_new_frames"] == 0  # the very same frames, in reverse order
    assert backwards == swapped(runs.counts(index))


@pytest.mark.parametrize("index", CLIPS)
def test_mirrored_frame_and_line_swap_in_and_out_exactly(runs: Runs, index: int) -> None:
    assert runs.counts(index, "mirrored") == swapped(runs.counts(index))


@pytest.mark.parametrize("index", CLIPS)
def test_high_quality_reencode_changes_nothing(runs: Runs, index: int) -> None:
    assert runs.counts(index, "reencoded") == runs.counts(index)


@pytest.mark.parametrize("index", CLIPS)
@pytest.mark.parametrize("variant", ["darker", "noisier", "jpeg_q20"])
def test_degraded_copies_stay_within_one_per_direction(runs: Runs, index: int, variant: str) -> None:
    got, original = runs.counts(index, variant), runs.counts(index)
    assert all(abs(got[d] - original[d]) <= 1 for d in ("in", "out")), (variant, got, original)


def test_same_file_same_events_every_run(runs: Runs) -> None:
    """A second replay with a fresh detector (2 threads, no memo) gives the very same crossings."""
    r = runs.clip(CLIPS[0])
    cam = camera(r["clip"])
    events: list[list[tuple[Any, ...]]] = []
    for det in (runs.detector, Detector(MODEL, threads=2, threshold=DetectorSettings(model=MODEL).floor)):
        summary = replay(cam, r["file"], detector=det)
        events.append([(c["direction"], c["track"], round(c["t"], 3)) for c in summary["crossings"]])
        assert counts(summary) == runs.counts(CLIPS[0])
    assert events[0] == events[1] and len(events[0]) == sum(runs.counts(CLIPS[0]).values())
