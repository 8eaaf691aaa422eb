"""Multi-object tracking: Kalman motion, two-stage (ByteTrack-style) optimal association.

Each track carries a constant-velocity Kalman filter on its box centre and size, with noise
proportional to the person's height (a far, small person moves fewer pixels). Every frame:

1. high-score detections are matched to all tracks (Hungarian on IoU with the predicted box;
   small, fast people that no longer overlap their prediction match on centre distance, with a gate
   that widens while a track coasts);
2. low-score detections keep the still-unmatched tracks alive through partial occlusion, but
   never start one;
3. unmatched high-score detections start tentative tracks.

A track gets a public id only after ``min_hits`` matches (flickers never count) and coasts on
its prediction for up to ``max_age`` frames without a match. ``Track.history`` keeps the
measured (not predicted) foot points with the frame number, which is what the line counter
reads: a coasting prediction never counts as a crossing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from vision.detector import Detection

# Process / measurement noise as a share of the box height (per analysed frame).
POS_NOISE, VEL_NOISE, MEAS_NOISE = 1 / 20, 1 / 80, 1 / 20


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


def _to_z(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]], dtype=float)


def _to_box(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=float)


def appearance(frame: np.ndarray, box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray | None:
    """Colour signature of a person: 4×4×4 BGR histograms of the upper and lower body (the box's
    middle 60 % in width, to leave out the background), L1-normalised; None if too small."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw = x2 - x1
    xa, xb = int(max(0, x1 + 0.2 * bw)), int(min(w, x2 - 0.2 * bw))
    ya, yb = int(max(0, y1)), int(min(h, y2))
    if xb - xa < 3 or yb - ya < 8:
        return None
    mid = (ya + yb) // 2
    parts = []
    for crop in (frame[ya:mid, xa:xb], frame[mid:yb, xa:xb]):
        hist = cv2.calcHist([np.ascontiguousarray(crop)], [0, 1, 2], None, [4, 4, 4], [0, 256, 0, 256, 0, 256]).ravel()
        parts.append(hist / max(1.0, float(hist.sum())))
    return np.concatenate(parts) / 2


def likeness(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya coefficient of two signatures: 1 = same colours, 0 = nothing in common (1 if unknown)."""
    if a is None or b is None:
        return 1.0
    return float(np.sqrt(a * b).sum())


class KalmanBox:
    """Constant velocity on (cx, cy, w, h); one step = one analysed frame."""

    F = np.eye(8) + np.eye(8, k=4)
    H = np.eye(4, 8)

    def __init__(self, box: np.ndarray) -> None:
        self.x = np.concatenate([_to_z(box), np.zeros(4)])
        h = max(self.x[3], 1.0)
        std = np.array([2 * POS_NOISE * h] * 4 + [10 * VEL_NOISE * h] * 4)
        self.P = np.diag(std**2)

    def predict(self) -> None:
        h = max(self.x[3], 1.0)
        q = np.array([POS_NOISE * h] * 4 + [VEL_NOISE * h] * 4) ** 2
        self.x = self.F @ self.x
        self.x[2:4] = self.x[2:4].clip(1.0)
        self.P = self.F @ self.P @ self.F.T + np.diag(q)

    def correct(self, box: np.ndarray) -> None:
        z = _to_z(box)
        r = np.diag((np.array([MEAS_NOISE * z[3]] * 4)) ** 2)
        s = self.H @ self.P @ self.H.T + r
        k = self.P @ self.H.T @ np.linalg.inv(s)
        self.x = self.x + k @ (z - self.H @ self.x)
        self.P = (np.eye(8) - k @ self.H) @ self.P

    @property
    def box(self) -> np.ndarray:
        return _to_box(self.x)


@dataclass
class Track:
    box: np.ndarray
    label: str
    score: float
    hits: int = 1
    missed: int = 0
    id: int | None = None
    age: int = 0
    #: measured foot points (frame, x, y): where the detector saw the person, never a prediction
    history: list[tuple[int, float, float]] = field(default_factory=list)
    kf: KalmanBox | None = None
    #: colour signature (upper and lower body), averaged over confident matches; None without frames
    feature: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=float)
        if self.kf is None:
            self.kf = KalmanBox(self.box)

    @property
    def velocity(self) -> np.ndarray:
        """Box motion per analysed frame (x1, y1, x2, y2)."""
        assert self.kf is not None
        vx, vy, vw, vh = self.kf.x[4:]
        return np.array([vx - vw / 2, vy - vh / 2, vx + vw / 2, vy + vh / 2])

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom centre: where a person stands (robust to heads and raised arms)."""
        return float((self.box[0] + self.box[2]) / 2), float(self.box[3])


class Tracker:
    def __init__(
        self,
        iou_threshold: float = 0.2,
        min_hits: int = 3,
        max_age: int = 10,
        high_score: float = 0.6,
        low_iou: float = 0.4,
        tentative_age: int = 1,
        min_likeness: float = 0.4,
        appearance_weight: float = 0.0,
    ) -> None:
        self.iou_threshold, self.min_hits, self.max_age, self.high_score = iou_threshold, min_hits, max_age, high_score
        self.low_iou, self.tentative_age, self.min_likeness = low_iou, tentative_age, min_likeness
        self.appearance_weight = appearance_weight
        self._features: list[np.ndarray | None] = []
        self.tracks: list[Track] = []
        self.frame = 0
        self._det_index: dict[int, int] = {}
        self._ids = itertools.count(1)

    def _similarity(self, tracks: list[Track], dets: list[Detection], threshold: float) -> np.ndarray:
        pred = np.array([t.box for t in tracks])
        boxes = np.array([d.box for d in dets])
        sim = iou_matrix(pred, boxes)
        # Small, fast people barely overlap their prediction: a close centre (under half a body
        # height) is a weak match, ranked below any real overlap.
        pc = (pred[:, None, :2] + pred[:, None, 2:]) / 2
        dc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
        dist = np.linalg.norm(pc - dc, axis=2)
        height = (pred[:, 3] - pred[:, 1])[:, None].clip(1)
        # A track coasting through an occlusion is less sure of where it is: its gate widens
        # by a quarter body height per missed frame (up to one and a half).
        reach = (0.5 + 0.25 * np.array([t.missed for t in tracks], dtype=float))[:, None].clip(0.5, 1.5) * height
        near = (sim < threshold) & (dist < reach)
        sim = np.where(near, threshold * (1 + 1e-3 * (1 - dist / reach)), sim)
        if self._features and self.appearance_weight > 0:
            # Appearance (re-identification over short occlusions): a coasting track, or a match on
            # centre distance alone, must look like the person it was; among such candidates the
            # better likeness wins (two people passing each other do not swap tracks).
            feats = self._det_features(dets)
            like = np.array([[likeness(t.feature, f) for f in feats] for t in tracks])
            if like.size:
                unsure = near | np.array([t.missed > 0 for t in tracks])[:, None]
                sim = np.where(unsure & (like < self.min_likeness), 0.0, sim)
                w = self.appearance_weight
                sim = np.where(unsure & (sim > 0), sim * (1 - w + w * like), sim)
        labels_differ = np.array([[t.label != d.label for d in dets] for t in tracks])
        return np.where(labels_differ, 0.0, sim)

    def _det_features(self, dets: list[Detection]) -> list[np.ndarray | None]:
        return [self._features[self._det_index[id(d)]] for d in dets]

    def _match(
        self, tracks: list[Track], dets: list[Detection], threshold: float
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Optimal one-to-one assignment maximising similarity; pairs below ``threshold`` are not matches."""
        if not tracks or not dets:
            return [], list(range(len(tracks))), list(range(len(dets)))
        sim = self._similarity(tracks, dets, threshold)
        rows, cols = linear_sum_assignment(-sim)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= threshold]
        used_t, used_d = {p[0] for p in pairs}, {p[1] for p in pairs}
        return pairs, [i for i in range(len(tracks)) if i not in used_t], [i for i in range(len(dets)) if i not in used_d]

    def update(self, detections: list[Detection] | None, frame: np.ndarray | None = None) -> list[Track]:
        """Advance one frame. ``None`` means no detector run this frame: tracks coast on prediction.
        With the ``frame``, tracks also carry a colour signature used to re-identify after occlusions."""
        self.frame += 1
        for t in self.tracks:
            assert t.kf is not None
            t.kf.predict()
            t.box = t.kf.box
            t.age += 1
        if detections is None:
            return self.confirmed()
        use_frame = frame is not None and self.appearance_weight > 0
        self._features = [appearance(frame, d.box) for d in detections] if use_frame and frame is not None else []
        self._det_index = {id(d): i for i, d in enumerate(detections)}
        high = [d for d in detections if d.score >= self.high_score]
        low = [d for d in detections if d.score < self.high_score]
        pairs, free_tracks, free_high = self._match(self.tracks, high, self.iou_threshold)
        for ti, di in pairs:
            self._apply(self.tracks[ti], high[di])
        remaining = [self.tracks[i] for i in free_tracks]
        pairs2, still_free, _ = self._match(remaining, low, self.low_iou)
        for ti, di in pairs2:
            self._apply(remaining[ti], low[di])
        for i in still_free:
            remaining[i].missed += 1
        for di in free_high:
            d = high[di]
            feature = self._features[self._det_index[id(d)]] if self._features else None
            self.tracks.append(Track(np.array(d.box, dtype=float), d.label, d.score, history=[self._foot(d)], feature=feature))
        self.tracks = [t for t in self.tracks if t.missed <= (self.max_age if t.id is not None else self.tentative_age)]
        return self.confirmed()

    def _foot(self, det: Detection) -> tuple[int, float, float]:
        return (self.frame, (det.x1 + det.x2) / 2, det.y2)

    def _apply(self, track: Track, det: Detection) -> None:
        assert track.kf is not None
        track.kf.correct(np.array(det.box, dtype=float))
        track.box, track.score = track.kf.box, det.score
        track.history.append(self._foot(det))
        feature = self._features[self._det_index[id(det)]] if self._features else None
        if feature is not None and det.score >= self.high_score:
            track.feature = feature if track.feature is None else 0.8 * track.feature + 0.2 * feature
        del track.history[:-64]
        track.hits += 1
        track.missed = 0
        if track.id is None and track.hits >= self.min_hits:
            track.id = next(self._ids)

    def confirmed(self) -> list[Track]:
        return [t for t in self.tracks if t.id is not None]
