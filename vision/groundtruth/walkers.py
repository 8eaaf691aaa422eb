"""Walkers cut from real footage: an empty scene by temporal median, people by track and mask.

``build`` runs the real detector and tracker over the source video, keeps the frames where a
confirmed track's box stands clear of every other detection, and cuts the person out with the
difference to the median background (largest blob touching the box's lower part). Each walker
keeps a short run of consecutive frames (its gait) and where in the source it came from, so the
development and held-out sets can use disjoint people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.groundtruth.detcache import CachedDetector
from vision.tracker import Tracker

GAIT = 8  # frames kept per walker


@dataclass
class Walker:
    """One real person: ``frames`` are BGRA crops (alpha = the person), feet at the bottom row."""

    id: int
    frames: list[np.ndarray]
    first_frame: int  # where in the source video the crops start
    moving_right: bool


def read_video(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise FileNotFoundError(f"cannot read video {path}")
    return frames


def median_background(frames: list[np.ndarray], step: int = 4) -> np.ndarray:
    """The empty scene: per-pixel median over time (people move on; the road stays)."""
    stack = np.stack(frames[::step])
    return np.median(stack, axis=0).astype(np.uint8)


def cut(frame: np.ndarray, bg: np.ndarray, box: np.ndarray, diff_threshold: int = 28) -> np.ndarray | None:
    """BGRA crop of the person in ``box`` (alpha from the background difference), or None if unclear."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, y1, x2, y2 = max(0, x1 - 3), max(0, y1 - 3), min(w, x2 + 3), min(h, y2 + 3)
    if x2 - x1 < 12 or y2 - y1 < 40:
        return None
    crop, back = frame[y1:y2, x1:x2], bg[y1:y2, x1:x2]
    diff = np.abs(cv2.GaussianBlur(crop, (3, 3), 0).astype(np.int16) - cv2.GaussianBlur(back, (3, 3), 0)).max(axis=2)
    mask = (diff > diff_threshold).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 5), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = np.where(labels == best, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(mask, contours, -1, 255, thickness=cv2.FILLED)  # fill holes (same colour as the road)
    share = mask.mean() / 255
    ys = np.nonzero(mask.any(axis=1))[0]
    if not 0.3 <= share <= 0.9 or ys[-1] < 0.85 * mask.shape[0] or ys[0] > 0.15 * mask.shape[0]:
        return None  # feet or head missing, or mostly background: not a clean cut
    xs = np.nonzero(mask.any(axis=0))[0]
    ty1, ty2, tx1, tx2 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    alpha = cv2.GaussianBlur(mask, (3, 3), 0)
    return np.dstack([crop, alpha])[ty1:ty2, tx1:tx2].copy()


def isolated(box: np.ndarray, others: list[np.ndarray], margin: float = 0.15) -> bool:
    w, h = box[2] - box[0], box[3] - box[1]
    gx1, gy1, gx2, gy2 = box[0] - margin * w, box[1] - margin * h, box[2] + margin * w, box[3] + margin * h
    return all(o[2] < gx1 or o[0] > gx2 or o[3] < gy1 or o[1] > gy2 for o in others)


def build(video: Path, detector: CachedDetector, min_height: int = 55) -> tuple[np.ndarray, list[Walker]]:
    """Background and walkers of ``video`` (real detector at its threshold, real tracker)."""
    frames = read_video(video)
    bg = median_background(frames)
    tracker = Tracker()
    runs: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for i, frame in enumerate(frames):
        dets = [d for d in detector.detect(frame) if d.label == "person"]
        boxes = [np.array(d.box) for d in dets]
        for t in tracker.update(dets):
            if t.missed or t.id is None:
                continue
            others = [b for b in boxes if np.abs(b - t.box).sum() > 1]
            h, w = frame.shape[:2]
            inside = t.box[0] > 4 and t.box[2] < w - 4 and t.box[3] < h - 4 and t.box[1] > 4
            sprite = cut(frame, bg, t.box) if inside and t.box[3] - t.box[1] >= min_height and isolated(t.box, others) else None
            run = runs.setdefault(t.id, [])
            if sprite is None:
                if len(run) < GAIT:
                    run.clear()
                continue
            if len(run) < GAIT and (not run or run[-1][0] == i - 1):
                run.append((i, sprite, t.box.copy()))
            elif len(run) < GAIT:
                run[:] = [(i, sprite, t.box.copy())]
    walkers = []
    for tid, run in sorted(runs.items()):
        if len(run) < GAIT:
            continue
        dx = (run[-1][2][0] + run[-1][2][2]) - (run[0][2][0] + run[0][2][2])
        walkers.append(Walker(tid, [s for _, s, _ in run], run[0][0], bool(dx >= 0)))
    return bg, walkers


def save(folder: Path, bg: np.ndarray, walkers: list[Walker], provenance: dict[str, object]) -> None:
    """One PNG atlas (BGRA, a row per walker, transparent pixels zeroed) + JSON index + background JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "background.jpg"), bg, [cv2.IMWRITE_JPEG_QUALITY, 92])
    heights = [max(f.shape[0] for f in w.frames) for w in walkers]
    row_w = max(sum(f.shape[1] for f in w.frames) for w in walkers)
    atlas = np.zeros((sum(heights), row_w, 4), np.uint8)
    index = []
    y = 0
    for w, row_h in zip(walkers, heights, strict=True):
        x = 0
        rects = []
        for f in w.frames:
            clean = f.copy()
            clean[clean[:, :, 3] == 0] = 0
            atlas[y : y + f.shape[0], x : x + f.shape[1]] = clean
            rects.append([x, y, f.shape[1], f.shape[0]])
            x += f.shape[1]
        index.append({"id": w.id, "first_frame": w.first_frame, "moving_right": w.moving_right, "rects": rects})
        y += row_h
    cv2.imwrite(str(folder / "walkers.png"), atlas, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    (folder / "walkers.json").write_text(json.dumps({"provenance": provenance, "walkers": index}) + "\n")


def load(folder: Path) -> tuple[np.ndarray, list[Walker]]:
    bg = cv2.imread(str(folder / "background.jpg"))
    atlas = cv2.imread(str(folder / "walkers.png"), cv2.IMREAD_UNCHANGED)
    if bg is None or atlas is None:
        raise FileNotFoundError(f"no walker bank in {folder} (build it: python -m vision.groundtruth walkers)")
    index = json.loads((folder / "walkers.json").read_text())["walkers"]
    walkers = [
        Walker(w["id"], [atlas[y : y + h, x : x + ww].copy() for x, y, ww, h in w["rects"]], w["first_frame"], w["moving_right"])
        for w in index
    ]
    return bg, walkers
