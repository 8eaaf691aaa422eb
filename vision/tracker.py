"""Multi-object tracking by IoU with constant-velocity prediction (SORT/ByteTrack style).

High-confidence detections are matched first, then low-confidence ones keep existing tracks
alive through partial occlusion. A track gets a public id only once confirmed
(``min_hits`` matches), so flickering false positives never count; it survives ``max_age``
missed frames on its predicted position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from vision.detector import Detection


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


@dataclass
class Track:
    box: np.ndarray
    label: str
    score: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    missed: int = 0
    id: int | None = None
    age: int = 0

    def predict(self) -> np.ndarray:
        return self.box + self.velocity

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom centre: where a person stands (robust to heads and raised arms)."""
        return float((self.box[0] + self.box[2]) / 2), float(self.box[3])


class Tracker:
    def __init__(self, iou_threshold: float = 0.25, min_hits: int = 3, max_age: int = 8, high_score: float = 0.6) -> None:
        self.iou_threshold, self.min_hits, self.max_age, self.high_score = iou_threshold, min_hits, max_age, high_score
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def _match(self, tracks: list[Track], dets: list[Detection]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        if not tracks or not dets:
            return [], list(range(len(tracks))), list(range(len(dets)))
        pred = np.array([t.predict() for t in tracks])
        boxes = np.array([d.box for d in dets])
        ious = iou_matrix(pred, boxes)
        # Small, fast people barely overlap between frames: accept a close centre as a weak match.
        pc = (pred[:, None, :2] + pred[:, None, 2:]) / 2
        dc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
        dist = np.linalg.norm(pc - dc, axis=2)
        height = (pred[:, 3] - pred[:, 1])[:, None].clip(1)
        near = (ious < self.iou_threshold) & (dist < 0.5 * height)
        ious = np.where(near, self.iou_threshold + 1e-3 * (1 - dist / (0.5 * height)), ious)
        pairs: list[tuple[int, int]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        for flat in np.argsort(-ious, axis=None):
            ti, di = divmod(int(flat), len(dets))
            if ious[ti, di] < self.iou_threshold:
                break
            if ti in used_t or di in used_d or tracks[ti].label != dets[di].label:
                continue
            pairs.append((ti, di))
            used_t.add(ti)
            used_d.add(di)
        return pairs, [i for i in range(len(tracks)) if i not in used_t], [i for i in range(len(dets)) if i not in used_d]

    def update(self, detections: list[Detection] | None) -> list[Track]:
        """Advance one frame. ``None`` means no detector run this frame: tracks coast on prediction."""
        if detections is None:
            for t in self.tracks:
                t.box = t.predict()
                t.age += 1
            return self.confirmed()
        high = [d for d in detections if d.score >= self.high_score]
        low = [d for d in detections if d.score < self.high_score]
        pairs, free_tracks, free_high = self._match(self.tracks, high)
        for ti, di in pairs:
            self._apply(self.tracks[ti], high[di])
        remaining = [self.tracks[i] for i in free_tracks]
        pairs2, still_free, _ = self._match(remaining, low)
        for ti, di in pairs2:
            self._apply(remaining[ti], low[di])
        for i in still_free:
            t = remaining[i]
            t.missed += 1
            t.box = t.predict()
            t.velocity *= 0.8
        for di in free_high:
            d = high[di]
            self.tracks.append(Track(np.array(d.box, dtype=float), d.label, d.score))
        self.tracks = [t for t in self.tracks if t.missed <= (self.max_age if t.id is not None else 1)]
        for t in self.tracks:
            t.age += 1
        return self.confirmed()

    def _apply(self, track: Track, det: Detection) -> None:
        box = np.array(det.box, dtype=float)
        track.velocity = 0.6 * track.velocity + 0.4 * (box - track.box)
        track.box, track.score = box, det.score
        track.hits += 1
        track.missed = 0
        if track.id is None and track.hits >= self.min_hits:
            track.id = next(self._ids)

    def confirmed(self) -> list[Track]:
        return [t for t in self.tracks if t.id is not None]
