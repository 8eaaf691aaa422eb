"""Detections memoised by frame content, so tuning and metamorphic runs re-run only the tracker.

The wrapped detector runs once per distinct frame at a low floor threshold; ``detect`` then
keeps the detections at or above the configured threshold. Greedy NMS keeps a box only if no
higher-scoring box suppresses it, so filtering the floor's output equals running at the
threshold (exact, not an approximation). Everything after ``detect`` is the real pipeline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from vision.detector import Detection, Detector
from vision.stages import StageTimes

FLOOR = 0.2


def frame_key(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


class CachedDetector:
    """``Detector``-compatible: ``detect(frame)``; a file-backed memo keyed by the frame's bytes."""

    def __init__(self, model: str, threshold: float, *, store: Path | None = None, threads: int = 2) -> None:
        self.model, self.threshold, self.store, self.threads = model, threshold, store, threads
        self._detector: Detector | None = None
        self.memo: dict[str, np.ndarray] = {}
        self.misses = 0
        self._labels: list[str] = []
        if store is not None and store.is_file():
            with np.load(store, allow_pickle=False) as data:
                self._labels = [str(x) for x in data["__labels__"]] if "__labels__" in data else []
                self.memo = {k: data[k] for k in data.files if k != "__labels__"}

    def _label_id(self, label: str) -> int:
        if label not in self._labels:
            self._labels.append(label)
        return self._labels.index(label)

    def raw(self, frame: np.ndarray) -> np.ndarray:
        """All detections at the floor threshold as rows (x1, y1, x2, y2, score, label id)."""
        key = frame_key(frame)
        hit = self.memo.get(key)
        if hit is None:
            if self._detector is None:
                self._detector = Detector(self.model, threads=self.threads, threshold=FLOOR, camera="groundtruth")
            dets = self._detector.detect(frame)
            hit = np.array([[*d.box, d.score, self._label_id(d.label)] for d in dets], dtype=np.float64).reshape(-1, 6)
            self.memo[key] = hit
            self.misses += 1
        return hit

    def detect(self, frame: np.ndarray, times: StageTimes | None = None) -> list[Detection]:
        """As ``Detector.detect``; a memo hit spends no inference, so ``times`` records nothing."""
        rows = self.raw(frame)
        return [
            Detection(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), self._labels[int(r[5])])
            for r in rows
            if r[4] >= self.threshold
        ]

    def save(self) -> None:
        if self.store is None or not self.misses:
            return
        self.store.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.store.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = {"__labels__": np.array(self._labels or ["person"]), **self.memo}
        np.savez_compressed(tmp, allow_pickle=False, **arrays)
        tmp.replace(self.store)
        self.misses = 0
