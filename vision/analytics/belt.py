"""Belt head/tail: running or stopped, load level, person in the danger zone while running."""

from __future__ import annotations

import cv2
import numpy as np

from buffer.record import Kind
from config.vision import BeltSettings
from vision.analytics import Cadence, Emit, FrameContext
from vision.geometry import inside, polygon_mask, to_pixels


class BeltMonitor:
    """Motion and load are image work checked every ``interval`` s (a belt starts and stops over
    seconds); the person-in-danger-zone check uses the tracks of every analysed frame."""

    def __init__(self, settings: BeltSettings, emit: Emit) -> None:
        self.settings, self.emit = settings, emit
        self.running: bool | None = None
        self.load = 0.0
        self.person_alarm = False
        self._mask: np.ndarray | None = None
        self._danger: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._empty: np.ndarray | None = None
        self._streak = 0
        self.cadence = Cadence(settings.interval)
        if settings.empty_reference is not None:
            ref = cv2.imread(str(settings.empty_reference))
            if ref is None:
                raise ValueError(f"belt.empty_reference {settings.empty_reference} is not a readable image")
            self._empty_src: np.ndarray | None = ref
        else:
            self._empty_src = None

    def _setup(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        self._mask = polygon_mask(to_pixels(self.settings.polygon, w, h), w, h) > 0
        if self.settings.danger_zone:
            self._danger = to_pixels(self.settings.danger_zone, w, h)
        if self._empty_src is not None:
            self._empty = cv2.cvtColor(cv2.resize(self._empty_src, (w, h)), cv2.COLOR_BGR2GRAY).astype(np.int16)

    def process(self, ctx: FrameContext) -> None:
        if self._mask is None:
            self._setup(ctx.frame)
        assert self._mask is not None
        if self.cadence.due(ctx.ts):
            self._motion_and_load(ctx.frame)
        if self._danger is not None:
            person = any(t.label == "person" and inside(self._danger, t.anchor) for t in ctx.tracks)
            breach = bool(person and self.running)
            if breach != self.person_alarm:
                self.person_alarm = breach
                self.emit(Kind.ALARM, {"alarm": "person_near_running_belt", "state": "raised" if breach else "cleared"}, ())

    def _motion_and_load(self, frame: np.ndarray) -> None:
        assert self._mask is not None
        grey = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.int16)
        if self._prev is not None:
            motion = float(np.abs(grey - self._prev)[self._mask].mean())
            moving = motion > self.settings.motion_threshold
            if self._empty is None and not moving:
                self._empty = grey.copy()  # a still, first view is taken as the empty belt
            if moving != self.running:
                self._streak += 1
                if self._streak >= self.settings.debounce_frames or self.running is None:
                    self.running, self._streak = moving, 0
                    self.emit(
                        Kind.EVENT,
                        {"event": "belt_state", "state": "running" if moving else "stopped", "motion": round(motion, 2)},
                        (),
                    )
            else:
                self._streak = 0
        self._prev = grey
        if self._empty is not None:
            covered = np.abs(grey - self._empty)[self._mask] > 30
            self.load = round(100.0 * float(covered.mean()), 1)
