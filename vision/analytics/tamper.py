"""Camera tamper: covered/dark, blurred, moved, frozen (and signal lost, from the source)."""

from __future__ import annotations

import cv2
import numpy as np

from buffer.record import Kind
from config.vision import TamperSettings
from vision.analytics import Cadence, Emit, FrameContext

KINDS = ("covered", "blurred", "moved", "frozen", "signal_lost")


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian (cv2.meanStdDev: ~100× faster than numpy's var here)."""
    return float(cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))[1][0, 0]) ** 2


class TamperDetector:
    """Compares the view with a reference learned from the first checks of a healthy view.

    Checks run every ``settings.interval`` seconds of media time, not on every analysed frame:
    a covered or turned camera is an alarm within seconds, and at 2 Hz the ~1 ms of image work
    per check is no longer a share of a 10 ms detector's budget on every frame.
    """

    LEARN_FRAMES = 5

    def __init__(self, settings: TamperSettings, emit: Emit) -> None:
        self.settings, self.emit = settings, emit
        self.active: set[str] = set()
        self._streak = dict.fromkeys(KINDS, 0)
        self._ref_grey: np.ndarray | None = None
        self._ref_sharp: list[float] = []
        self._prev: np.ndarray | None = None
        self._still = 0
        self.cadence = Cadence(settings.interval)
        self.checks = 0

    def _small(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (320, int(320 * grey.shape[0] / grey.shape[1])))

    def process(self, ctx: FrameContext) -> set[str]:
        """Check this frame if a check is due (see ``interval``); the active kinds either way."""
        if not self.cadence.due(ctx.ts):
            return self.active
        self.checks += 1
        grey = self._small(ctx.frame)
        m, sd = cv2.meanStdDev(grey)
        mean, std = float(m[0, 0]), float(sd[0, 0])
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
