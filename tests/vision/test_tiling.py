"""Detection on tiles along the counting line (vision/tiling.py), with the real NanoDet model.

A real walker from the ground-truth bank (cut from vtest.avi) is pasted onto vtest's empty scene:
30 px tall, NanoDet on the whole 768×576 frame does not see it; on the 416 px tiles along the
line it does. A person inside the overlap of two tiles comes back once.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from config.vision import CameraSettings
from vision.detector import Detection, Detector
from vision.groundtruth import walkers
from vision.groundtruth.__main__ import BANK
from vision.pipeline import CameraPipeline
from vision.tiling import TiledDetector, line_tiles, merge

LINE = [(0.5, 0.1), (0.5, 0.95)]  # vertical, 490 px on 768×576: two 416 px tiles, y 0–416 and 160–576


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, list[walkers.Walker]]:
    return walkers.load(BANK)


@pytest.fixture(scope="module")
def nanodet() -> Detector:
    return Detector("nanodet_m_416", threads=1, threshold=0.35)


def paste(frame: np.ndarray, sprite: np.ndarray, foot: tuple[int, int], height: int) -> np.ndarray:
    """``frame`` with the BGRA ``sprite`` scaled to ``height`` pixels standing at ``foot``."""
    out = frame.copy()
    w = max(2, round(sprite.shape[1] * height / sprite.shape[0]))
    s = cv2.resize(sprite, (w, height), interpolation=cv2.INTER_AREA)
    x0, y0 = foot[0] - w // 2, foot[1] - height
    alpha = s[:, :, 3:] / 255.0
    region = out[y0 : y0 + height, x0 : x0 + w]
    out[y0 : y0 + height, x0 : x0 + w] = (s[:, :, :3] * alpha + region * (1 - alpha)).astype(np.uint8)
    return out


def people_at(dets: list[Detection], foot: tuple[int, int], tol: float = 20) -> list[Detection]:
    return [d for d in dets if d.label == "person" and math.hypot((d.x1 + d.x2) / 2 - foot[0], d.y2 - foot[1]) < tol]


def test_tiles_are_squares_inside_the_frame_covering_the_line() -> None:
    for (a, b), (w, h) in [
        (((384, 58), (384, 547)), (768, 576)),  # vertical: 2 tiles
        (((40, 330), (730, 290)), (768, 576)),  # horizontal, 690 px: 2 tiles
        (((30, 30), (740, 560)), (768, 576)),  # diagonal, 890 px: 3 tiles
        (((300, 200), (400, 260)), (640, 480)),  # short: 1 tile
    ]:
        rects = line_tiles([(a, b)], w, h, 416)
        n = math.ceil(math.hypot(b[0] - a[0], b[1] - a[1]) / 416)
        assert len(rects) == n
        for x1, y1, x2, y2 in rects:
            assert x2 - x1 == y2 - y1 == 416 and x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h
        for f in np.linspace(0, 1, 50):  # every point of the segment is inside a tile
            p = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
            assert any(x1 <= p[0] <= x2 and y1 <= p[1] <= y2 for x1, y1, x2, y2 in rects), p
    assert line_tiles([((10, 10), (20, 300))], 320, 240, 416) == [(0, 0, 240, 240)]  # never larger than the frame


def test_small_far_person_is_found_only_on_tiles(scene: tuple[np.ndarray, list[walkers.Walker]], nanodet: Detector) -> None:
    still, bank = scene
    foot = (384, 200)
    frame = paste(still, bank[0].frames[0], foot, 30)
    assert people_at(nanodet.detect(frame), foot) == []  # squeezed to 416: ~22 px, missed
    tiled = TiledDetector(nanodet, [LINE], 416)
    found = people_at(tiled.detect(frame), foot)
    assert tiled.rects == [(176, 0, 592, 416), (176, 160, 592, 576)]
    assert len(found) == 1 and found[0].score >= 0.35
    assert abs(found[0].y2 - foot[1]) < 6 and abs(found[0].y2 - found[0].y1 - 30) < 10  # in frame pixels


def test_person_in_the_overlap_of_two_tiles_is_reported_once(
    scene: tuple[np.ndarray, list[walkers.Walker]], nanodet: Detector
) -> None:
    still, bank = scene
    foot = (384, 340)  # 70 px tall: y 270–340, wholly inside both tiles (overlap y 160–416)
    frame = paste(still, bank[3].frames[0], foot, 70)
    tiled = TiledDetector(nanodet, [LINE], 416)
    per_tile = [
        people_at(nanodet.detect(frame[y1:y2, x1:x2]), (foot[0] - x1, foot[1] - y1)) for x1, y1, x2, y2 in tiled.layout(768, 576)
    ]
    assert [len(p) for p in per_tile] == [1, 1]  # both tiles see the person
    assert len(people_at(tiled.detect(frame), foot)) == 1


def box(x1: float, y1: float, x2: float, y2: float, score: float = 0.6, label: str = "person") -> Detection:
    return Detection(x1, y1, x2, y2, score, label)


def test_merge_keeps_the_whole_box_over_a_cut_one_and_keeps_neighbours() -> None:
    whole = box(100, 300, 130, 400, 0.5)
    cut = box(100, 300, 130, 340, 0.9)  # the top 40 % of the same person, cut by a tile's bottom edge
    assert merge([(cut, True), (whole, False)]) == [whole]  # IoU 0.4 alone would keep both
    assert merge([(cut, False), (whole, False)]) == [cut, whole]  # not cut: two boxes, two people
    beside = box(118, 300, 148, 400, 0.55)  # a second person half a body width away: IoU 0.25
    assert merge([(whole, False), (beside, False)]) == [beside, whole]  # best score first
    same = box(102, 302, 131, 401, 0.7)  # the same person seen whole by two tiles
    assert merge([(whole, False), (same, False)]) == [same]
    car = box(100, 300, 130, 400, 0.9, "car")
    assert len(merge([(whole, False), (car, False)])) == 2  # per class


def test_counting_camera_with_tiles_detects_on_tiles() -> None:
    cam = CameraSettings.model_validate(
        {"id": "c", "url": "x", "lines": [{"name": "l", "points": LINE}], "detector": {"tiles": "lines"}}
    )
    pipe = CameraPipeline(cam, lambda r: None)
    assert isinstance(pipe.detector, TiledDetector)
    off = CameraSettings.model_validate(
        {"id": "c", "url": "x", "lines": [{"name": "l", "points": LINE}], "detector": {"tiles": "off"}}
    )
    assert not isinstance(CameraPipeline(off, lambda r: None).detector, TiledDetector)
