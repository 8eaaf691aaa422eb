"""Back-pressure from a real camera worker: alarms wait for room, telemetry is dropped and counted."""

from __future__ import annotations

import itertools
import pickle
import time
from pathlib import Path

import cv2
import numpy as np

from buffer.record import Attachment, Kind, Record
from buffer.sink import ListSink
from config.vision import CameraSettings
from tests.vision.conftest import read_frames
from vision.runtime import CameraWorker

OLD_TIMEOUT = 5.0  # seconds after which the old worker dropped an alarm on a full queue


def blinking_video(path: Path, seconds: float = 30.0, fps: int = 20) -> str:
    """Real frames (vtest) alternating with black ones: a covered/uncovered camera, a tamper alarm per frame."""
    real = read_frames("vtest.avi", 40)
    h, w = real[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    black = np.zeros((h, w, 3), np.uint8)
    for i in range(int(seconds * fps)):
        out.write(real[(i // 2) % len(real)] if i % 2 else black)
    out.release()
    return str(path)


def blinking_camera(url: str) -> CameraSettings:
    return CameraSettings.model_validate(
        {
            "id": "cam-blink",
            "url": url,
            "fps": 20,
            "telemetry_interval": 0.01,
            "hang_timeout": 3,
            "tamper": {"debounce_frames": 1, "frozen_frames": 100000, "interval": 0},  # check every frame
        }
    )


def test_record_pickles_unchanged_with_attachments() -> None:
    rec = Record(
        "cam-1",
        Kind.ALARM,
        {"alarm": "seal_breach", "state": "raised"},
        ts=1_800_000_000.25,
        attachments=(Attachment("snapshot.jpg", "image/jpeg", bytes(range(256)) * 400),),
    )
    assert pickle.loads(pickle.dumps(rec)) == rec


def test_alarms_wait_for_room_while_the_parent_does_not_drain(tmp_path: Path) -> None:
    sink = ListSink()
    worker = CameraWorker(blinking_camera(blinking_video(tmp_path / "blink.avi")), sink, queue_size=8)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not any(r.kind is Kind.ALARM for r in sink.records):
            assert time.monotonic() < deadline, "the worker produced no alarm"
            worker.drain()
            time.sleep(0.05)
        stall = OLD_TIMEOUT + 2.5
        time.sleep(stall)  # the parent does not drain: the worker must wait, not drop alarms
        assert worker.proc.is_alive()
        assert time.time() - worker.heartbeat.value < 1.5, "a worker waiting for room keeps its heartbeat"
        worker.supervise()
        assert worker.restarts == 0, "a worker under back-pressure was taken for hung"
        end = time.monotonic() + 3
        while time.monotonic() < end:
            worker.drain()
            time.sleep(0.05)
    finally:
        worker.stop()
    stats = worker.health()["records"]
    alarms = [r for r in sink.records if r.kind is Kind.ALARM]
    tele = [r for r in sink.records if r.kind is Kind.TELEMETRY]
    assert stats["produced"]["alarm"] >= 20
    assert len(alarms) == stats["produced"]["alarm"], stats  # every alarm arrived
    assert set(stats["dropped"]) == {"telemetry"} and stats["dropped"]["telemetry"] >= 4, stats
    assert len(tele) == stats["produced"]["telemetry"] - stats["dropped"]["telemetry"], stats
    assert stats["backpressure_s"] >= stall - 1.5, stats
    # covered raised/cleared strictly alternate: a lost alarm would show as two equal states in a row
    states = [r.payload["state"] for r in alarms if r.payload.get("kind") == "covered"]
    assert len(states) == len(alarms)
    assert all(a != b for a, b in itertools.pairwise(states)), states
    assert all(r.source == "cam-blink" for r in sink.records)
