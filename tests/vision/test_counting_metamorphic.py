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

from config.vision import CameraSettings
from vision.cli import replay
from vision.detector import Detector
from vision.groundtruth import walkers
from vision.groundtruth.__main__ import BANK
from vision.groundtruth.compose import Clip, render
from vision.groundtruth.detcache import CachedDetector
from vision.groundtruth.sets import CHECK, make_clip

MODEL, THRESHOLD = "nanodet_m_416", 0.35
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
            "detector": {"model": MODEL, "score_threshold": THRESHOLD, "threads": 2},
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


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """Per clip: truth, the camera file's counts, each variant's counts, the detector memo."""
    still, bank = walkers.load(BANK)
    det = CachedDetector(MODEL, THRESHOLD / 2)
    out: dict[int, dict[str, Any]] = {}
    for index in CLIPS:
        folder = tmp_path_factory.mktemp(f"clip{index}")
        clip, backgrounds = make_clip(CHECK, index, bank, still)
        rendered = [render(clip, bank, backgrounds, f, seed=index) for f in range(clip.frames)]
        original = write(folder / "camera.avi", rendered, clip.fps, "MJPG")  # what a camera would have recorded
        decoded = decode(original)
        res: dict[str, Any] = {"clip": clip, "truth": clip.truth(), "file": original, "decoded": decoded}
        res["original"] = counts(replay(camera(clip), original, detector=det))
        misses = det.misses
        for name, fn in VARIANTS.items():
            video = write(folder / f"{name}.avi", fn(decoded), clip.fps)  # lossless: only the variant differs
            res[name] = counts(replay(camera(clip, mirrored=name == "mirrored"), video, detector=det))
            if name == "backwards":
                res["backwards_new_frames"] = det.misses - misses
        hq = write(folder / "reencoded.avi", decoded, clip.fps, "MJPG", quality=100)
        res["reencoded"] = counts(replay(camera(clip), hq, detector=det))
        res["detector"] = det
        out[index] = res
    return out


@pytest.mark.parametrize("index", CLIPS)
def test_counts_are_right_on_the_clip(results: dict[int, dict[str, Any]], index: int) -> None:
    r = results[index]
    assert r["original"] == r["truth"], r


@pytest.mark.parametrize("index", CLIPS)
def test_backwards_swaps_in_and_out_exactly(results: dict[int, dict[str, Any]], index: int) -> None:
    r = results[index]
    assert r["backwards_new_frames"] == 0  # the very same frames, in reverse order
    assert r["backwards"] == swapped(r["original"]), r


@pytest.mark.parametrize("index", CLIPS)
def test_mirrored_frame_and_line_swap_in_and_out_exactly(results: dict[int, dict[str, Any]], index: int) -> None:
    r = results[index]
    assert r["mirrored"] == swapped(r["original"]), r


@pytest.mark.parametrize("index", CLIPS)
def test_high_quality_reencode_changes_nothing(results: dict[int, dict[str, Any]], index: int) -> None:
    r = results[index]
    assert r["reencoded"] == r["original"], r


@pytest.mark.parametrize("index", CLIPS)
@pytest.mark.parametrize("variant", ["darker", "noisier", "jpeg_q20"])
def test_degraded_copies_stay_within_one_per_direction(results: dict[int, dict[str, Any]], index: int, variant: str) -> None:
    r = results[index]
    for d in ("in", "out"):
        assert abs(r[variant][d] - r["original"][d]) <= 1, (variant, r[variant], r["original"])


def test_same_file_same_events_every_run(results: dict[int, dict[str, Any]]) -> None:
    """A second replay with a fresh detector (2 threads, no memo) gives the very same crossings."""
    r = results[CLIPS[0]]
    cam = camera(r["clip"])
    events: list[list[tuple[Any, ...]]] = []
    for det in (r["detector"], Detector(MODEL, threads=2, threshold=THRESHOLD / 2)):
        summary = replay(cam, r["file"], detector=det)
        events.append([(c["direction"], c["track"], round(c["t"], 3)) for c in summary["crossings"]])
        assert counts(summary) == r["original"]
    assert events[0] == events[1] and len(events[0]) == sum(r["original"].values())
