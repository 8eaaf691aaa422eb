"""Electronic seal: any person or vehicle in the sealed zone while sealed is an alarm with evidence."""

from __future__ import annotations

import collections
import time

import cv2
import numpy as np

from buffer.record import Attachment, Kind
from config.vision import SealSettings
from vision.analytics import Emit, FrameContext
from vision.geometry import inside, to_pixels


def sealed_now(settings: SealSettings, ts: float) -> bool:
    if not settings.schedule:
        return True
    local = time.localtime(ts)
    now = local.tm_hour * 60 + local.tm_min
    for w in settings.schedule:
        start = int(w.start[:2]) * 60 + int(w.start[3:])
        end = int(w.end[:2]) * 60 + int(w.end[3:])
        if (start <= now < end) if start <= end else (now >= start or now < end):
            return True
    return False


def annotate(frame: np.ndarray, tracks: list, polygon: np.ndarray | None, text: str) -> np.ndarray:
    out = frame.copy()
    if polygon is not None:
        cv2.polylines(out, [polygon.astype(np.int32)], True, (0, 255, 255), 2)
    for t in tracks:
        x1, y1, x2, y2 = (int(v) for v in t.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2)
        cv2.putText(
            out, f"{t.label} {t.id or ''} {t.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1
        )
    cv2.putText(out, text, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
    return out


def jpeg(frame: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class ElectronicSeal:
    def __init__(self, settings: SealSettings, emit: Emit, camera: str, jpeg_quality: int = 80) -> None:
        self.settings, self.emit, self.camera, self.quality = settings, emit, camera, jpeg_quality
        self._poly: np.ndarray | None = None
        self._streak = 0
        self._last_alarm = -1e18
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, settings.burst_frames))
        self.alarms = 0

    def process(self, ctx: FrameContext) -> bool:
        if self._poly is None:
            self._poly = to_pixels(self.settings.polygon, *ctx.size)
        self._recent.append(ctx.frame)
        if not sealed_now(self.settings, ctx.ts):
            self._streak = 0
            return False
        intruders = [t for t in ctx.tracks if t.label in self.settings.classes and inside(self._poly, t.anchor)]
        self._streak = self._streak + 1 if intruders else 0
        if self._streak < self.settings.min_frames or ctx.ts - self._last_alarm < self.settings.cooldown:
            return False
        self._last_alarm = ctx.ts
        self.alarms += 1
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ctx.ts))
        snapshot = annotate(ctx.frame, intruders, self._poly, f"SEAL BREACH {self.camera} {stamp}")
        attachments = [Attachment("snapshot.jpg", "image/jpeg", jpeg(snapshot, self.quality))]
        for i, frame in enumerate(list(self._recent)[:-1]):
            small = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2))
            attachments.append(Attachment(f"burst-{i}.jpg", "image/jpeg", jpeg(small, 60)))
        classes = sorted({t.label for t in intruders})
        self.emit(
            Kind.ALARM,
            {
                "alarm": "seal_breach",
                "state": "raised",
                "objects": len(intruders),
                "classes": classes,
                "frames_seen": self._streak,
            },
            tuple(attachments),
        )
        return True
