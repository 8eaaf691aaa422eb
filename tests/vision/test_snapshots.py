"""Periodic camera snapshots: a real worker on a real MJPEG stream sends decodable JPEGs on time."""

from __future__ import annotations

import asyncio
import itertools

import cv2
import numpy as np

from buffer.sink import ListSink
from hil.camera_server import CameraServer
from tests.vision.conftest import MEDIA
from tests.vision.test_runtime import run_for, settings_for
from vision.runtime import Vision
from vision.snapshots import PeriodicSnapshot


def test_first_frame_then_every_interval_scaled_and_robust_to_a_clock_step() -> None:
    snap = PeriodicSnapshot("cam-1", interval=60.0, max_width=400)
    frame = np.full((576, 768, 3), 90, np.uint8)
    assert snap.due(1000.0)
    rec = snap.take(frame, 1000.0)
    assert rec.payload["reason"] == "first_frame" and (rec.payload["width"], rec.payload["height"]) == (400, 300)
    (att,) = rec.attachments
    img = cv2.imdecode(np.frombuffer(att.data, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (300, 400, 3) and att.name == "snapshot.jpg"
    assert not snap.due(1059.9) and snap.due(1060.0)
    assert snap.take(frame, 1060.0).payload["reason"] == "periodic"
    assert not snap.due(1100.0)
    assert snap.due(900.0)  # the clock stepped back by minutes: not silent until it catches up
    assert not PeriodicSnapshot("cam-1", interval=0).due(0.0)  # 0 = off


def test_a_restarted_worker_keeps_the_schedule() -> None:
    import multiprocessing as mp

    last = mp.get_context("spawn").Value("d", 0.0)
    frame = np.full((100, 100, 3), 90, np.uint8)
    first = PeriodicSnapshot("cam-1", interval=900.0, last=last)
    assert first.due(1000.0) and first.take(frame, 1000.0).payload["reason"] == "first_frame"
    again = PeriodicSnapshot("cam-1", interval=900.0, last=last)  # the worker crashed and restarted
    assert not again.due(1060.0) and again.due(1900.0)
    assert again.take(frame, 1900.0).payload["reason"] == "periodic"


def test_a_real_worker_sends_snapshots_through_its_channel() -> None:
    server = CameraServer({"vtest": MEDIA / "vtest.avi"}).start()
    sink = ListSink()
    vision = Vision(settings_for(server.url("vtest"), snapshot_interval=2), sink)

    def snaps() -> list:
        return [r for r in sink.records if r.payload.get("event") == "camera_snapshot"]

    try:
        asyncio.run(run_for(vision, 40, until=lambda: len(snaps()) >= 3))
    finally:
        server.stop()
    got = snaps()
    assert len(got) >= 3 and got[0].payload["reason"] == "first_frame"
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(got)]
    assert all(g >= 2.0 for g in gaps), gaps  # frame time: never sooner than the interval
    img = cv2.imdecode(np.frombuffer(got[-1].attachments[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 768 and img.std() > 10  # a real picture, not a blank
