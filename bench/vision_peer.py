"""Counting side by side: the same detections through Roboflow ``supervision`` (ByteTrack +
LineZone) and through Headframe's tracker and line counter, errors per clip against the truth.

    pip install -e '.[bench]'   # supervision: a bench-only extra, never a runtime dependency
    .venv/bin/python -m bench.vision_peer [--model nanodet_m_416 --threshold 0.35] [--no-cache]

Clips: the hand-counted truth of ``tests/vision/data/vtest_ground_truth.json`` (vtest.avi
frames 0–400, 6 in / 8 out), its two halves (truth split by crossing frame; no crossing lies
within 18 frames of the cut), and two transforms whose truth is exact by construction: the
clip mirrored left–right with the line mirrored (in and out swap) and played backwards (in and
out swap). The detector runs once per clip and model; its outputs are cached (``--cache``)
and both counters get exactly the same detections, frame by frame, at the video's 10 fps.

supervision is run twice, with LineZone's default trigger (all four box corners must change
side) and with the bottom centre (Headframe's anchor: where a person stands); the better of
the two is the baseline. Its in/out orientation is calibrated on a synthetic walker first.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from buffer.record import Record
from config import load_settings_text
from vision.analytics import Emit, FrameContext
from vision.analytics.lines import LineCounter
from vision.detector import Detection, Detector
from vision.tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "vision" / "data"
VIDEO = ROOT / "hil" / "media" / "vtest.avi"
FPS = 10

Frames = list[np.ndarray]  # per frame: [n, 5] x1 y1 x2 y2 score (people)


def detect_all(frames: list[np.ndarray], model: str, threshold: float) -> Frames:
    det = Detector(model, threads=2, threshold=threshold, classes=["person"])
    out = []
    for f in frames:
        people = [d for d in det.detect(f) if d.label == "person"]
        out.append(np.array([[*d.box, d.score] for d in people], dtype=np.float64).reshape(-1, 5))
    return out


def cached_detections(
    name: str, frames: Callable[[], list[np.ndarray]], model: str, threshold: float, cache: Path | None
) -> Frames:
    path = cache / f"{name}-{model}-{threshold}.npz" if cache else None
    if path and path.exists():
        with np.load(path) as z:
            return [z[f"f{i}"] for i in range(len(z.files))]
    dets = detect_all(frames(), model, threshold)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **{f"f{i}": d for i, d in enumerate(dets)})  # type: ignore[arg-type]
    return dets


def headframe_count(dets: Frames, size: tuple[int, int], line: Any) -> tuple[int, int]:
    """Headframe's tracker and line counter, exactly as the pipeline runs them."""
    records: list[Record] = []
    tracker, counter = Tracker(), LineCounter(line, Emit("peer", records.append))
    blank = np.zeros((size[1], size[0], 3), np.uint8)
    for i, d in enumerate(dets):
        tracks = tracker.update([Detection(row[0], row[1], row[2], row[3], row[4], "person") for row in d.tolist()])
        counter.process(FrameContext(blank, i / FPS, i, tracks, True))
    return counter.total("in"), counter.total("out")


def supervision_count(dets: Frames, size: tuple[int, int], points: list[tuple[float, float]], anchor: str) -> tuple[int, int]:
    """supervision's ByteTrack + LineZone on the same detections, in Headframe's in/out sense."""
    import supervision as sv

    w, h = size
    (ax, ay), (bx, by) = points
    anchors = (
        [sv.Position.BOTTOM_CENTER]
        if anchor == "bottom centre"
        else list(sv.LineZone(sv.Point(0, 0), sv.Point(1, 1)).triggering_anchors)
    )
    zone = sv.LineZone(sv.Point(ax * w, ay * h), sv.Point(bx * w, by * h), triggering_anchors=anchors)
    tracker = sv.ByteTrack(frame_rate=FPS)
    for d in dets:
        found = sv.Detections(
            xyxy=d[:, :4].astype(np.float32), confidence=d[:, 4].astype(np.float32), class_id=np.zeros(len(d), int)
        )
        zone.trigger(tracker.update_with_detections(found))
    return (zone.in_count, zone.out_count) if _sv_in_is_ours(points, size, anchors) else (zone.out_count, zone.in_count)


def _sv_in_is_ours(points: list[tuple[float, float]], size: tuple[int, int], anchors: list[Any]) -> bool:
    """Does LineZone's ``in`` mean Headframe's ``in`` (left of A→B to its right)? One synthetic walker."""
    import supervision as sv

    from config.vision import LineSettings

    w, h = size
    line = LineSettings(name="cal", points=points)
    ours = LineCounter(line, Emit("cal", lambda r: None))
    (ax, ay), (bx, by) = points
    zone = sv.LineZone(sv.Point(ax * w, ay * h), sv.Point(bx * w, by * h), triggering_anchors=anchors)
    blank = np.zeros((h, w, 3), np.uint8)
    mid = ((ax + bx) / 2 * w, (ay + by) / 2 * h)
    normal = np.array([-(by - ay) * h, (bx - ax) * w])  # perpendicular to A→B in pixels
    normal /= np.linalg.norm(normal)
    from vision.tracker import Track

    for k in range(-10, 11):
        x, y = mid[0] + normal[0] * 8 * k, mid[1] + normal[1] * 8 * k
        box = np.array([x - 10, y - 40, x + 10, y])
        ours.process(FrameContext(blank, 0, k, [Track(box, "person", 0.9, id=1)], True))
        zone.trigger(sv.Detections(xyxy=box[None].astype(np.float32), class_id=np.zeros(1, int), tracker_id=np.array([1])))
    assert zone.in_count + zone.out_count == 1 and ours.total("in") + ours.total("out") == 1, "calibration walker"
    return bool((zone.in_count == 1) == (ours.total("in") == 1))


def read(first: int, last: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    for i in range(last):
        ok, f = cap.read()
        if not ok:
            break
        if i >= first:
            out.append(f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="nanodet_m_416")
    ap.add_argument("--threshold", type=float, default=0.35)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "headframe-bench")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()
    cache = None if args.no_cache else args.cache
    truth = json.loads((DATA / "vtest_ground_truth.json").read_text())
    settings = load_settings_text((DATA / "vtest.yaml").read_text())
    line = settings.cameras[0].lines[0]
    size = (768, 576)
    first, last = truth["frames"]

    def truth_of(a: int, b: int) -> tuple[int, int]:
        cs = [c for c in truth["crossings"] if a <= c["frame"] < b]
        return sum(c["direction"] == "in" for c in cs), sum(c["direction"] == "out" for c in cs)

    full = cached_detections("vtest-0-400", lambda: read(first, last), args.model, args.threshold, cache)
    mirrored = cached_detections(
        "vtest-0-400-mirrored", lambda: [cv2.flip(f, 1) for f in read(first, last)], args.model, args.threshold, cache
    )
    mline = line.model_copy(update={"points": [(1 - x, y) for x, y in line.points]})
    t_in, t_out = truth_of(first, last)
    clips: list[tuple[str, Frames, Any, tuple[int, int]]] = [
        ("vtest 0-400", full, line, (t_in, t_out)),
        ("vtest 0-200", full[:200], line, truth_of(0, 200)),
        ("vtest 200-400", full[200:], line, truth_of(200, 400)),
        ("vtest 0-400 mirrored", mirrored, mline, (t_out, t_in)),
        ("vtest 0-400 backwards", full[::-1], line, (t_out, t_in)),
    ]
    print(f"detector {args.model} threshold {args.threshold}; same cached detections into every counter")
    head = f"{'clip':24} {'truth in/out':>12} | {'Headframe':>10} {'err':>4} | "
    print(head + f"{'sv corners':>10} {'err':>4} | {'sv bottom':>10} {'err':>4}")
    totals = {"headframe": 0, "sv corners": 0, "sv bottom": 0}
    crossings = 0
    for name, dets, ln, (ti, to) in clips:
        t0 = time.perf_counter()
        hf = headframe_count(dets, size, ln)
        t_hf = time.perf_counter() - t0
        sc = supervision_count(dets, size, list(ln.points), "corners")
        sb = supervision_count(dets, size, list(ln.points), "bottom centre")
        errs = {k: abs(c[0] - ti) + abs(c[1] - to) for k, c in (("headframe", hf), ("sv corners", sc), ("sv bottom", sb))}
        for k, v in errs.items():
            totals[k] += v
        crossings += ti + to
        print(
            f"{name:24} {ti:>5} / {to:<4} | {hf[0]:>4} / {hf[1]:<3} {errs['headframe']:>4} | "
            f"{sc[0]:>4} / {sc[1]:<3} {errs['sv corners']:>4} | {sb[0]:>4} / {sb[1]:<3} {errs['sv bottom']:>4}"
            f"   ({1000 * t_hf / len(dets):.2f} ms/frame Headframe track+count)"
        )
    print(
        "total absolute error over "
        + f"{crossings} crossings: "
        + ", ".join(f"{k} {v} ({100 * v / crossings:.0f} %)" for k, v in totals.items())
    )


if __name__ == "__main__":
    main()
