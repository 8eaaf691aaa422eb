"""One camera's analysis: detector → tracker → analytics, emitting ``Record``s to ``out``.

Time per stage is kept (``times``, reported in telemetry as ``stage_ms``). Analyses that need
no every-frame rate (tamper, belt motion/load) run at their own cadence in media time. A stream
that changes resolution mid-way is analysed at the resolution it started with (geometry,
tracks and the tamper reference stay valid; counts go on) and the change is an event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2
import numpy as np

from buffer.record import Kind, Record
from config.vision import CameraSettings
from vision.analytics import Emit, FrameContext, RecordOut
from vision.analytics.belt import BeltMonitor
from vision.analytics.lines import LineCounter
from vision.analytics.seal import ElectronicSeal
from vision.analytics.tamper import TamperDetector
from vision.analytics.zones import ZoneOccupancy
from vision.detector import Detector
from vision.stages import StageTimes
from vision.tiling import TiledDetector
from vision.tracker import Tracker
from vision.trail import TrackTrail

log = logging.getLogger("headframe.vision.worker")


class CameraPipeline:
    def __init__(self, cam: CameraSettings, out: RecordOut, detector: Detector | None = None) -> None:
        self.cam, self.out = cam, out
        self._emit = Emit(cam.id, self._record)
        d = cam.detector
        needs_detector = bool(cam.lines or cam.zones or cam.seal or (cam.belt and cam.belt.danger_zone))
        self.detector: Detector | TiledDetector | None = detector or (
            Detector(d.model, threads=d.threads, classes=list(d.classes), threshold=d.floor, path=d.model_path, camera=cam.id)
            if needs_detector
            else None
        )
        if self.detector is not None and d.tiles == "lines" and cam.lines:
            self.detector = TiledDetector(self.detector, [line.points for line in cam.lines], d.tile_size)
        self.tracker = Tracker(high_score=d.score_threshold)
        self.lines = [LineCounter(s, self._emit) for s in cam.lines]
        self.zones = [ZoneOccupancy(s, self._emit) for s in cam.zones]
        self.seal = ElectronicSeal(cam.seal, self._emit, cam.id, cam.jpeg_quality) if cam.seal else None
        self.tamper = TamperDetector(cam.tamper, self._emit) if cam.tamper.enabled else None
        self.belt = BeltMonitor(cam.belt, self._emit) if cam.belt else None
        #: the last minutes of tracks, for "replay with this line" on the technician's page (vision/trail.py)
        self.trail = TrackTrail(cam.id) if self.detector is not None else None
        self.index = 0
        self.alarms: list[dict[str, Any]] = []
        self._last_telemetry = 0.0
        self.frames = 0
        self._fps_mark = (time.monotonic(), 0)
        self.fps = 0.0
        self.times = StageTimes()
        self.size: tuple[int, int] | None = None  # (w, h) analysed: the stream's first resolution
        self._seen_size: tuple[int, int] | None = None  # the stream's current resolution
        #: seconds over which fps and inference time are averaged
        self.fps_window = 5.0
        #: mean detector time per run over the last fps window (ms); None without a detector
        self.inference_ms: float | None = None
        self._infer = (0.0, 0)  # seconds spent and runs in the current window

    def _record(self, record: Record) -> None:
        started = time.perf_counter()
        if record.kind is Kind.ALARM:
            self.alarms.append({**record.payload, "ts": record.ts})
        self.out(record)
        self.times.add("emit", time.perf_counter() - started)

    def _normalise(self, frame: np.ndarray) -> np.ndarray:
        """Frames at the first resolution seen; a change is said once (event + log) each time."""
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = self._seen_size = (w, h)
            return frame
        if (w, h) != self._seen_size:
            before, self._seen_size = self._seen_size, (w, h)
            assert before is not None
            log.warning("stream resolution changed from %dx%d to %dx%d; analysed at %dx%d", *before, w, h, *self.size)
            self._emit(
                Kind.EVENT,
                {
                    "event": "camera_resolution_changed",
                    "from": list(before),
                    "to": [w, h],
                    "analysed_as": list(self.size),
                },
            )
        return frame if (w, h) == self.size else cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)

    def source_state(self, lost: bool, reason: str = "") -> None:
        """The stream is gone (or back): a tamper alarm stamped now, not with the last frame's time."""
        if self.tamper:
            self._emit.ts = None
            self.tamper.signal(lost, reason)

    def process(self, frame: np.ndarray, ts: float) -> None:
        if frame is None or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
            raise ValueError("corrupt frame (not an H×W×3 image)")
        self._emit.ts = ts
        times = self.times
        with times.measure("preprocess"):
            frame = self._normalise(frame)
        run_detector = self.detector is not None and self.index % self.cam.detector.every_n_frames == 0
        detections = None
        if run_detector and self.detector:
            started = time.perf_counter()
            detections = self.detector.detect(frame, times)
            self._infer = (self._infer[0] + time.perf_counter() - started, self._infer[1] + 1)
        with times.measure("track"):
            tracks = self.tracker.update(detections, frame) if self.detector else []
        ctx = FrameContext(frame, ts, self.index, tracks, run_detector)
        if self.tamper:
            with times.measure("tamper"):
                self.tamper.process(ctx)
        with times.measure("analytics"):
            for counter in self.lines:
                counter.process(ctx)
            for zone in self.zones:
                zone.process(ctx)
            if self.seal:
                self.seal.process(ctx)
            if self.belt:
                self.belt.process(ctx)
            if self.trail is not None:
                self.trail.add(ctx)
        self.index += 1
        self.frames += 1
        times.frames += 1
        now = time.monotonic()
        if now - self._fps_mark[0] >= self.fps_window:
            self.fps = (self.frames - self._fps_mark[1]) / (now - self._fps_mark[0])
            self._fps_mark = (now, self.frames)
            if self._infer[1]:
                self.inference_ms = 1000.0 * self._infer[0] / self._infer[1]
            self._infer = (0.0, 0)
        if ts - self._last_telemetry >= self.cam.telemetry_interval:
            self._last_telemetry = ts
            self._emit(Kind.TELEMETRY, self.telemetry())

    def telemetry(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "people_visible": sum(1 for t in self.tracker.confirmed() if t.label == "person"),
        }
        if self.inference_ms is not None:
            data["inference_ms"] = round(self.inference_ms, 2)
        if self.lines:
            data["lines"] = {c.settings.name: c.counts for c in self.lines}
        if self.zones:
            data["zones"] = {z.settings.name: {"count": z.count, "peak": z.peak, "limit": z.settings.limit} for z in self.zones}
        if self.belt:
            data["belt"] = {"running": self.belt.running, "load_pct": self.belt.load}
        if self.tamper:
            data["tamper"] = sorted(self.tamper.active)
        if self._seen_size is not None:
            data["resolution"] = list(self._seen_size)
        data["stage_ms"] = self.times.take()
        return data

    def summary(self) -> dict[str, Any]:
        """What ``vision replay --json`` prints."""
        return {
            "camera": self.cam.id,
            "frames": self.frames,
            "lines": {c.settings.name: c.counts for c in self.lines},
            "zones": {z.settings.name: {"peak": z.peak, "limit": z.settings.limit} for z in self.zones},
            "belt": {"running": self.belt.running, "load_pct": self.belt.load} if self.belt else None,
            "alarms": [{k: v for k, v in a.items()} for a in self.alarms],
        }
