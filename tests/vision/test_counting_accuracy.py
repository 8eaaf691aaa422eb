"""People counting on the whole of vtest.avi (795 frames) against the hand truth, default camera config."""

from __future__ import annotations

import json
from pathlib import Path

from config.vision import CameraSettings
from tests.vision.conftest import MEDIA
from vision.cli import replay

DATA = Path(__file__).parent / "data"


def test_full_vtest_counts_with_the_default_config() -> None:
    truth = json.loads((DATA / "vtest_ground_truth.json").read_text())["full"]
    # the shipped defaults: model, thresholds, tiles, tracker, 4 analysed frames per second
    cam = CameraSettings.model_validate(
        {
            "id": "cam-vtest",
            "url": "x",
            "tamper": {"enabled": False},
            "lines": [{"name": "mid", "points": [[0.5, 0.15], [0.5, 1.0]]}],
        }
    )
    summary = replay(cam, str(MEDIA / "vtest.avi"))
    assert summary["frames"] == 318  # 795 frames at 10 fps sampled at 4 fps
    got = {d: summary["lines"]["mid"][d].get("person", 0) for d in ("in", "out")}
    assert (truth["in"], truth["out"]) == (13, 17)
    # Measured 12 in / 17 out with the shipped default (NanoDet 0.35 on 416 px tiles along the line,
    # docs/vision.md): issue 12's target, within ±1 per direction, is met; a regression fails it.
    assert abs(got["in"] - truth["in"]) <= 1 and abs(got["out"] - truth["out"]) <= 1, got
    assert cam.detector.tiles == "lines"  # the default counting camera detects on tiles
