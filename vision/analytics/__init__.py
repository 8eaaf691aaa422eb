"""Per-camera analytics. Each takes a FrameContext and emits records through ``Emit``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from buffer.record import Attachment, Kind
from vision.tracker import Track

Emit = Callable[[Kind, dict, tuple[Attachment, ...]], None]


@dataclass
class FrameContext:
    frame: np.ndarray
    ts: float
    index: int
    tracks: list[Track]
    detected: bool  # did the detector run on this frame

    @property
    def size(self) -> tuple[int, int]:
        return self.frame.shape[1], self.frame.shape[0]
