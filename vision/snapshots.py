"""A picture of what each camera sees, every ``snapshot_interval``: evidence between alarms.

The regulations want counts "and snapshots" from wellheads and a seal camera's picture behind
every "stopped on paper, secretly running" alarm. An alarm's own JPEG only exists once an alarm
fired; a camera that saw nothing for weeks had no picture at all, and a camera turned to the sky
looked the same as one watching an empty entrance. So every camera sends one scaled JPEG as a
``camera_snapshot`` event at its first frame and then every ``snapshot_interval`` (frame time),
through the buffer like any record: chained, buffered through an outage, and the latest one is
what the secretly-running rule copies onto its alarm (docs/rules.md).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from buffer.record import Attachment, Kind, Record
from vision.analytics.seal import jpeg


class PeriodicSnapshot:
    """Decides when a frame becomes a snapshot and builds the record (in the camera worker)."""

    def __init__(self, camera: str, interval: float, max_width: int = 960, quality: int = 70, last: Any = None) -> None:
        self.camera, self.interval, self.max_width, self.quality = camera, interval, max_width, quality
        #: shared with the agent (``multiprocessing.Value``), so a restarted worker keeps the schedule
        self.last = last
        prev = float(last.value) if last is not None else 0.0
        self._next: float | None = prev + interval if prev > 0 else None  # None: the first frame
        self.sent = 0
        self._first = self._next is None

    def due(self, ts: float) -> bool:
        if self.interval <= 0:
            return False
        # a clock stepped back (NTP) must not silence snapshots until it catches up again
        return self._next is None or ts >= self._next or ts < self._next - 2 * self.interval

    def take(self, frame: np.ndarray, ts: float) -> Record:
        """The snapshot record of ``frame`` (scaled down to ``max_width``); schedules the next."""
        self._next = ts + self.interval
        if self.last is not None:
            self.last.value = ts
        h, w = frame.shape[:2]
        if w > self.max_width:
            frame = cv2.resize(frame, (self.max_width, round(h * self.max_width / w)), interpolation=cv2.INTER_AREA)
        data = jpeg(frame, self.quality)
        self.sent += 1
        payload = {
            "event": "camera_snapshot",
            "reason": "first_frame" if self.sent == 1 and self._first else "periodic",
            "width": frame.shape[1],
            "height": frame.shape[0],
            "source_size": [w, h],
            "interval_s": self.interval,
        }
        return Record(self.camera, Kind.EVENT, payload, ts=ts, attachments=(Attachment("snapshot.jpg", "image/jpeg", data),))
