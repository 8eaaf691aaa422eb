"""Camera fps and inference time: from the real detector, through the worker's health, onto /metrics."""

from __future__ import annotations

import time

import cv2
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from agent.metrics.exporter import HealthRecordCollector
from buffer.record import Kind, Record
from config.vision import CameraSettings
from tests.support.wait import wait_until
from tests.vision.conftest import MEDIA
from vision.pipeline import CameraPipeline
from vision.runtime import CameraWorker


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def emit(self, record: Record) -> None:
        self.records.append(record)


def test_inference_time_reaches_metrics() -> None:
    cam = CameraSettings.model_validate(
        {
            "id": "cam-1",
            "url": "x",
            "tamper": {"enabled": False},
            "telemetry_interval": "1s",
            "detector": {"model": "ssdlite_person_300", "score_threshold": 0.5},
            "zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        }
    )
    frame = cv2.imread(str(MEDIA / "person.jpg"))
    out: list[Record] = []
    pipe = CameraPipeline(cam, out.append)
    pipe.fps_window = 0.0  # average over every frame: the figures appear without a 5 s wait
    spent = 0.0
    for i in range(4):
        started = time.perf_counter()
        pipe.process(frame, 1_800_000_000.0 + 2 * i)
        spent = max(spent, time.perf_counter() - started)
    telemetry = [r for r in out if r.kind is Kind.TELEMETRY]
    assert telemetry and all("inference_ms" in r.payload for r in telemetry[1:])
    ms = telemetry[-1].payload["inference_ms"]
    assert 0 < ms <= spent * 1000  # the detector's share of one frame's processing, which we timed

    worker = CameraWorker(cam, Sink())
    for record in telemetry:
        assert worker.channel.send(record)
    wait_until("the worker to take the telemetry", lambda: worker.drain() == 0 and worker.inference_ms == ms, timeout=5)
    health = worker.health()
    assert health["inference_ms"] == ms and health["fps"] == telemetry[-1].payload["fps"] > 0

    collector = HealthRecordCollector("mine-a", "gw-01")
    collector.update({"producers": {"vision": {"cameras": {"cam-1": health}}}}, time.time())
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
        if s.labels.get("camera") == "cam-1" and "state" not in s.labels
    }
    assert samples["headframe_camera_inference_seconds"] == ms / 1000
    assert samples["headframe_camera_fps"] == health["fps"]
