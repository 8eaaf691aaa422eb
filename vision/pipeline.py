"""One camera's analysis: detector → tracker → analytics, emitting ``Record``s to ``out``."""

from __future__ import annotations

import time
from typing import Any

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
from vision.tracker import Tracker


class CameraPipeline:
    def __init__(self, cam: CameraSettings, out: RecordOut, detector: Detector | None = None) -> None:
        self.cam, self.out = cam, out
        self._emit = Emit(cam.id, self._record)
        d = cam.detector
        needs_detector = bool(cam.lines or cam.zones or cam.seal or (cam.belt and cam.belt.danger_zone))
        self.detector = detector or (
            Detector(d.model, threads=d.threads, classes=list(d.classes), threshold=d.floor, path=d.model_path, camera=cam.id)
            if needs_detector
            else None
        )
        self.tracker = Tracker(high_score=d.score_threshold)
        self.lines = [LineCounter(s, self._emit) for s in cam.lines]
        self.zones = [ZoneOccupancy(s, self._emit) for s in cam.zones]
        self.seal = ElectronicSeal(cam.seal, self._emit, cam.id, cam.jpeg_quality) if cam.seal else None
        self.tamper = TamperDetector(cam.tamper, self._emit) if cam.tamper.enabled else None
        self.belt = BeltMonitor(cam.belt, self._emit) if cam.belt else None
        self.index = 0
        self.alarms: list[dict[str, Any]] = []
        self._last_telemetry = 0.0
        self.frames = 0
        self._fps_mark = (time.monotonic(), 0)
        self.fps = 0.0

    def _record(self, record: Record) -> None:
        if record.kind is Kind.ALARM:
            self.alarms.append({**record.payload, "ts": record.ts})
        self.out(record)

    def source_state(self, lost: bool, reason: str = "") -> None:
        """The stream is gone (or back): a tamper alarm stamped now, not with the last frame's time."""
        if self.tamper:
            self._emit.ts = None
            self.tamper.signal(lost, reason)

    def process(self, frame: np.ndarray, ts: float) -> None:
        self._emit.ts = ts
        run_detector = self.detector is not None and self.index % self.cam.detector.every_n_frames == 0
        detections = self.detector.detect(frame) if run_detector and self.detector else None
        tracks = self.tracker.update(detections, frame) if self.detector else []
        ctx = FrameContext(frame, ts, self.index, tracks, run_detector)
        if self.tamper:
            self.tamper.process(ctx)
        for counter in self.lines:
            counter.process(ctx)
        for zone in self.zones:
            zone.process(ctx)
        if self.seal:
            self.seal.process(ctx)
        if self.belt:
            self.belt.process(ctx)
        self.index += 1
        self.frames += 1
        now = time.monotonic()
        if now - self._fps_mark[0] >= 5:
            self.fps = (self.frames - self._fps_mark[1]) / (now - self._fps_mark[0])
            self._fps_mark = (now, self.frames)
        if ts - self._last_telemetry >= self.cam.telemetry_interval:
            self._last_telemetry = ts
            self._emit(Kind.TELEMETRY, self.telemetry())

    def telemetry(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "fps": round(self.fps, 2),
            "people_visible": sum(1 for t in self.tracker.confirmed() if t.label == "person"),
        }
        if self.lines:
            data["lines"] = {c.settings.name: c.counts for c in self.lines}
        if self.zones:
            data["zones"] = {z.settings.name: {"count": z.count, "peak": z.peak, "limit": z.settings.limit} for z in self.zones}
        if self.belt:
            data["belt"] = {"running": self.belt.running, "load_pct": self.belt.load}
        if self.tamper:
            data["tamper"] = sorted(self.tamper.active)
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
