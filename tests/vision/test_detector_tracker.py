"""The real ONNX models through onnxruntime; the tracker on real detections and crafted motion."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vision.detector import MODEL_DIR, Detection, Detector, ModelError
from vision.tracker import Tracker

# person.jpg: the person stands at about x 175–275, y 90–380 (checked by eye on the image)
PERSON_BOX = (175, 90, 275, 380)


def overlap(box: tuple[float, float, float, float], ref: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = max(box[0], ref[0]), max(box[1], ref[1]), min(box[2], ref[2]), min(box[3], ref[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((ref[2] - ref[0]) * (ref[3] - ref[1]))


@pytest.mark.parametrize("model", ["nanodet_m_416", "ssdlite_person_300"])
def test_models_find_the_person(model: str, person_image: np.ndarray) -> None:
    dets = Detector(model, threads=2, threshold=0.5).detect(person_image)
    people = [d for d in dets if d.label == "person"]
    assert len(people) == 1
    assert overlap(people[0].box, PERSON_BOX) > 0.8


def test_nanodet_finds_people_on_real_video(vtest_frames: list[np.ndarray]) -> None:
    det = Detector("nanodet_m_416", threads=2, threshold=0.4)
    counts = [len(det.detect(f)) for f in vtest_frames[::10]]
    assert min(counts) >= 1 and max(counts) <= 12  # 1–9 people walk past in the clip


def test_missing_and_mismatched_models_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"camera cam-7: model file .* not found"):
        Detector("ssdlite_person_300", path=tmp_path / "nope.onnx", camera="cam-7")
    wrong = tmp_path / "nanodet.onnx"
    shutil.copy(MODEL_DIR / "ssdlite_mobilenetv2_person_300.onnx", wrong)
    with pytest.raises(ModelError, match=r"cam-7: model nanodet\.onnx does not look like NanoDet"):
        Detector("nanodet_m_416", path=wrong, camera="cam-7")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load model"):
        Detector("ssdlite_person_300", path=junk, camera="cam-7")


def test_corrupt_frame_is_rejected() -> None:
    det = Detector("ssdlite_person_300")
    with pytest.raises(ValueError, match="corrupt frame"):
        det.detect(np.zeros((10, 10), dtype=np.uint8))


def d(x: float, y: float, score: float = 0.9) -> Detection:
    return Detection(x, y, x + 20, y + 50, score, "person")


def test_ids_survive_a_short_occlusion_and_unconfirmed_get_none() -> None:
    tr = Tracker(min_hits=3, max_age=5)
    for i in range(5):
        tr.update([d(10 + 4 * i, 100), d(200 - 4 * i, 100)])
    ids = {round(t.box[0]): t.id for t in tr.confirmed()}
    assert len(set(ids.values())) == 2 and None not in ids.values()
    first = sorted(t.id for t in tr.confirmed())
    for _ in range(3):  # both hidden for three frames
        tr.update([])
    for i in range(5, 8):
        tr.update([d(10 + 4 * i, 100), d(200 - 4 * i, 100)])
    assert sorted(t.id for t in tr.confirmed()) == first
    tr.update([d(400, 300)])  # a new flicker: tracked but not confirmed, no id
    assert all(t.id is not None for t in tr.confirmed())
    assert any(t.id is None for t in tr.tracks)


def test_low_score_detections_keep_tracks_but_never_start_them() -> None:
    tr = Tracker(min_hits=2, high_score=0.6)
    tr.update([d(0, 0, 0.4)])
    assert tr.tracks == []
    tr.update([d(0, 0, 0.9)])
    tr.update([d(2, 0, 0.9)])
    tr.update([d(4, 0, 0.3)])
    assert len(tr.confirmed()) == 1 and tr.confirmed()[0].missed == 0
