"""Zone occupancy: people inside a polygon, alarm at ≥ limit (debounced) and a clear event.

With ``presence`` the zone also says when it becomes occupied or empty (``zone_presence``,
debounced; the first decision after a worker start is always said, so a consumer never keeps a
state from before a restart). What that means (a hot-work permit, say) is decided by a rule.
"""

from __future__ import annotations

import numpy as np

from buffer.record import Kind
from config.vision import ZoneSettings
from vision.analytics import Emit, FrameContext
from vision.geometry import inside, to_pixels


class ZoneOccupancy:
    def __init__(self, settings: ZoneSettings, emit: Emit) -> None:
        self.settings, self.emit = settings, emit
        self.count = 0
        self.peak = 0
        self.alarm = False
        self._streak = 0
        self._poly: np.ndarray | None = None
        self.present: bool | None = None  # None until the first debounced decision
        self._presence_streak = 0

    def process(self, ctx: FrameContext) -> int:
        if self._poly is None:
            self._poly = to_pixels(self.settings.polygon, *ctx.size)
        self.count = sum(1 for t in ctx.tracks if t.label == "person" and inside(self._poly, t.anchor))
        self.peak = max(self.peak, self.count)
        if self.settings.presence:
            self._presence(ctx.ts)
        over = self.count >= self.settings.limit
        self._streak = self._streak + 1 if over != self.alarm else 0
        if self._streak >= self.settings.debounce_frames:
            self.alarm, self._streak = over, 0
            if over:
                self.emit(
                    Kind.ALARM,
                    {
                        "alarm": "occupancy_limit",
                        "state": "raised",
                        "zone": self.settings.name,
                        "count": self.count,
                        "limit": self.settings.limit,
                    },
                    (),
                )
            else:
                self.emit(
                    Kind.EVENT,
                    {"event": "occupancy_clear", "zone": self.settings.name, "count": self.count, "limit": self.settings.limit},
                    (),
                )
                self.emit(
                    Kind.ALARM,
                    {"alarm": "occupancy_limit", "state": "cleared", "zone": self.settings.name, "count": self.count},
                    (),
                )
        return self.count

    def _presence(self, ts: float) -> None:
        now = self.count > 0
        self._presence_streak = self._presence_streak + 1 if now != self.present else 0
        if self._presence_streak >= self.settings.debounce_frames:
            self.present, self._presence_streak = now, 0
            self.emit(Kind.EVENT, {"event": "zone_presence", "zone": self.settings.name, "present": now, "count": self.count}, ())
