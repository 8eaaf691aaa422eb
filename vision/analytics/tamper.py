"""Camera tamper: covered/dark, blurred, moved, frozen (and signal lost, from the source)."""

from __future__ import annotations

import cv2
import numpy as np

from buffer.record import Kind
from config.vision import TamperSettings
from vision.analytics import Emit, FrameContext

KINDS = ("covered", "blurred", "moved", "frozen", "signal_lost")


def sharpness(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


class TamperDetector:
    """Compares each frame with a reference learned from the first frames of a healthy view."""

    LEARN_FRAMES = 5

    def __init__(self, settings: TamperSettings, emit: Emit) -> None:
        self.settings, self.emit = settings, emit
        self.active: set[str] = set()
        self._streak = dict.fromkeys(KINDS, 0)
        self._ref_grey: np.ndarray | None = None
        self._ref_sharp: list[float] = []
        self._prev: np.ndarray | None = None
        self._still = 0

    def _small(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (320, int(320 * grey.shape[0] / grey.shape[1])))

    def process(self, ctx: FrameContext) -> set[str]:
        grey = self._small(ctx.frame)
        mean, std = float(grey.mean()), float(grey.std())
        sharp = sharpness(grey)
        found: set[str] = set()
        if mean < self.settings.dark_level or std < 6.0:
            found.add("covered")
        if self._prev is not None and float(cv2.absdiff(grey, self._prev).mean()) < 0.05:
            self._still += 1
        else:
            self._still = 0
        self._prev = grey
        # a covered lens shows the same dark picture every frame: that is "covered", not also
        # "frozen" (one cause, one alarm)
        if self._still >= self.settings.frozen_frames and "covered" not in found:
            found.add("frozen")
        if "covered" not in found:
            if len(self._ref_sharp) < self.LEARN_FRAMES:
                self._ref_sharp.append(sharp)
                if len(self._ref_sharp) == self.LEARN_FRAMES:
                    self._ref_grey = grey.astype(np.float32)
            else:
                if sharp < self.settings.blur_ratio * float(np.median(self._ref_sharp)):
                    found.add("blurred")
                elif self._ref_grey is not None:
                    (dx, dy), response = cv2.phaseCorrelate(self._ref_grey, grey.astype(np.float32))
                    shift = max(abs(dx), abs(dy)) / grey.shape[1]
                    if shift > self.settings.shift_fraction and response > 0.05:
                        found.add("moved")
        self._update(found, ctx)
        return self.active

    def signal(self, lost: bool, reason: str = "") -> None:
        """The source reports the stream gone (or back)."""
        if lost and "signal_lost" not in self.active:
            self.active.add("signal_lost")
            self.emit(Kind.ALARM, {"alarm": "tamper", "kind": "signal_lost", "state": "raised", "reason": reason}, ())
        elif not lost and "signal_lost" in self.active:
            self.active.discard("signal_lost")
            self.emit(Kind.ALARM, {"alarm": "tamper", "kind": "signal_lost", "state": "cleared"}, ())

    def _update(self, found: set[str], ctx: FrameContext) -> None:
        for kind in ("covered", "blurred", "moved", "frozen"):
            differs = (kind in found) != (kind in self.active)
            self._streak[kind] = self._streak[kind] + 1 if differs else 0
            if self._streak[kind] >= self.settings.debounce_frames:
                self._streak[kind] = 0
                if kind in found:
                    self.active.add(kind)
                    self.emit(Kind.ALARM, {"alarm": "tamper", "kind": kind, "state": "raised"}, ())
                else:
                    self.active.discard(kind)
                    self.emit(Kind.ALARM, {"alarm": "tamper", "kind": kind, "state": "cleared"}, ())
