"""Where a camera's time goes, per stage, so speed claims are measured on the real pipeline.

The pipeline, detector and source add seconds per stage; ``measure`` excludes the time spent
emitting records inside a stage (a line counter emits while it counts), so stages add up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("decode", "preprocess", "inference", "postprocess", "track", "analytics", "tamper", "emit")


class StageTimes:
    """Seconds spent per stage since the last ``take``; cheap enough to run always (~1 µs)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.frames = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started, emitted = time.perf_counter(), self.seconds["emit"]
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started - (self.seconds["emit"] - emitted)

    def ms_per_frame(self) -> dict[str, float]:
        """Milliseconds per analysed frame, per stage (decode counts every frame decoded for it)."""
        n = max(1, self.frames)
        return {k: round(1000.0 * v / n, 3) for k, v in self.seconds.items()}

    def take(self) -> dict[str, float]:
        """``ms_per_frame`` since the last take, then start over (what telemetry reports)."""
        out = self.ms_per_frame()
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.frames = 0
        return out
