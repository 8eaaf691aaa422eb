"""A covered lens is one fault: "covered", not also "frozen" (what the HIL camera_covered asserts)."""

from __future__ import annotations

from typing import Any

import numpy as np

from config.vision import TamperSettings
from tests.vision.conftest import read_frames
from vision.analytics import FrameContext
from vision.analytics.tamper import TamperDetector


def run(frames: list[np.ndarray]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def emit(kind: Any, payload: dict[str, Any], attachments: Any) -> None:
        seen.append((payload["kind"], payload["state"]))

    det = TamperDetector(TamperSettings(frozen_frames=6, debounce_frames=2), emit)
    for i, frame in enumerate(frames):
        det.process(FrameContext(frame, float(i), i, [], False))
    return seen


def test_a_covered_camera_raises_covered_only_and_a_frozen_one_frozen() -> None:
    video = read_frames("vtest.avi", 30)
    black = np.full_like(video[0], 8)
    # covered for 20 frames (far longer than frozen_frames), then uncovered
    assert run(video[:8] + [black] * 20 + video[8:30]) == [("covered", "raised"), ("covered", "cleared")]
    # the same length of one repeated real frame is frozen, and only that
    assert run(video[:8] + [video[8]] * 20 + video[9:30]) == [("frozen", "raised"), ("frozen", "cleared")]
