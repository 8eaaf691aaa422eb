"""Bad input and faults on real workers and real files: a corrupt file, a truncated file, a stream
that changes resolution mid-way, black frames, a model file replaced by garbage. Each is said
naming the camera and the cause, shows in health, and the other cameras go on; every record the
workers produced is committed in the real buffer (SQLite)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from buffer.boundary import BufferService
from buffer.record import Committed, Kind, Record
from config import load_settings_text
from config.vision import CameraSettings
from hil.camera_server import CameraServer
from tests.support.wait import wait_until
from tests.vision.conftest import MEDIA
from vision.pipeline import CameraPipeline
from vision.runtime import Vision
from vision.tracker import iou_matrix


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def truncated_clip(tmp: Path, frames: list[np.ndarray]) -> tuple[Path, int]:
    """A 40-frame AVI cut at 45 % of its bytes (an upload or copy that stopped short)."""
    whole = write_clip(tmp / "whole.avi", frames[:40])
    cut = tmp / "truncated.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.45)])
    return cut, 40


def test_truncated_and_corrupt_files_are_told_apart(tmp_path: Path, vtest_frames: list[np.ndarray]) -> None:
    """The source's own words for each (what health and the event carry); frames before the cut are used."""
    from vision.source import LatestFrameSource

    cut, total = truncated_clip(tmp_path, vtest_frames)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    src = LatestFrameSource(str(cut), reconnect_max=1).start()
    try:
        reason = wait_until("the truncated file's end", lambda: src.error)
        assert f"ended after {src.frames} of {total} frames (truncated or corrupt)" in reason
        assert 5 <= src.frames < total
    finally:
        src.stop()
    src = LatestFrameSource(str(junk), reconnect_max=1).start()
    try:
        reason = wait_until("the corrupt file's error", lambda: src.error)
        assert str(junk) in reason and ("cannot open" in reason or "no decodable frame" in reason)
        assert src.frames == 0
    finally:
        src.stop()


def test_resolution_change_keeps_tracks_and_is_said_once(vtest_frames: list[np.ndarray]) -> None:
    records: list[Record] = []
    cam = CameraSettings.model_validate(
        {
            "id": "cam-r",
            "url": "x",
            "detector": {"model": "ssdlite_person_300", "score_threshold": 0.4},
            "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
            "tamper": {"interval": 0},
        }
    )
    pipe = CameraPipeline(cam, records.append)
    ref = CameraPipeline(cam, lambda r: None, detector=pipe.detector)  # the same stream, never switched
    ids_before: set[int | None] = set()
    for i, f in enumerate(vtest_frames[:40]):
        small = cv2.resize(f, (384, 288), interpolation=cv2.INTER_AREA)
        pipe.process(f if i < 20 else small, i / 10)
        ref.process(f, i / 10)
        if i == 19:
            ids_before = {t.id for t in pipe.tracker.confirmed()}
        if i == 21:
            assert ids_before & {t.id for t in pipe.tracker.confirmed()}, "tracks broken by the switch"
    # analysed in the first resolution's pixels: the zones' and lines' geometry still holds
    boxes, ref_boxes = [t.box for t in pipe.tracker.confirmed()], np.array([t.box for t in ref.tracker.confirmed()])
    assert boxes and all(iou_matrix(np.array([b]), ref_boxes).max() > 0.5 for b in boxes)
    changes = [r.payload for r in records if r.payload.get("event") == "camera_resolution_changed"]
    assert changes == [{"event": "camera_resolution_changed", "from": [768, 576], "to": [384, 288], "analysed_as": [768, 576]}]
    assert [r.payload for r in records if r.kind is Kind.ALARM] == []  # the same scene: no tamper
    assert pipe.telemetry()["resolution"] == [384, 288]


@pytest.fixture()
def fault_site(tmp_path: Path, vtest_frames: list[np.ndarray]) -> Any:
    cut, _ = truncated_clip(tmp_path, vtest_frames)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(2).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    garbage_model = tmp_path / "model.onnx"
    garbage_model.write_bytes(np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    server = CameraServer({"ok": MEDIA / "vtest.avi", "black": MEDIA / "vtest.avi", "resize": MEDIA / "vtest.avi"}).start()
    server.modes["black"] = "covered"
    tamper_only = {"fps": 4, "telemetry_interval": 1, "hang_timeout": 20, "tamper": {"interval": 0.25, "debounce_frames": 2}}
    cams = [
        {
            "id": "cam-ok",
            "url": server.url("ok"),
            **tamper_only,
            "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        },
        {"id": "cam-black", "url": server.url("black"), **tamper_only},
        {"id": "cam-resize", "url": server.url("resize"), **tamper_only},
        {"id": "cam-trunc", "url": str(cut), **tamper_only},
        {"id": "cam-junk", "url": str(junk), **tamper_only, "reconnect_max": 1},
        {
            "id": "cam-model",
            "url": server.url("ok"),
            **tamper_only,
            "detector": {"model": "ssdlite_person_300", "model_path": str(garbage_model)},
            "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        },
    ]
    settings = load_settings_text(
        json.dumps(
            {
                "gateway": {"site": "s", "id": "g"},
                "buffer": {"path": str(tmp_path / "buf.db"), "flush_interval": "20ms"},
                "cameras": cams,
            }
        ),
        base_dir=tmp_path,
    )
    yield server, settings
    server.stop()


def test_faults_are_named_in_health_and_other_cameras_go_on(fault_site: Any, caplog: pytest.LogCaptureFixture) -> None:
    server, settings = fault_site
    buffer = BufferService(settings)
    vision = Vision(settings, buffer)
    committed: list[Record] = []

    def on_commit(batch: Sequence[Committed]) -> None:
        committed.extend(c.record for c in batch)

    def seen(source: str, pred: Any) -> list[Record]:
        return [r for r in committed if r.source == source and pred(r.payload)]

    def health(cam: str) -> dict[str, Any]:
        return dict(vision.health()["cameras"][cam])

    async def run() -> None:
        await buffer.open()
        buffer.subscribe(on_commit)
        stop = asyncio.Event()
        writer = asyncio.create_task(buffer.run(stop))
        await vision.start()
        loop = asyncio.get_running_loop()

        async def until(what: str, pred: Any, timeout: float = 45) -> Any:
            return await loop.run_in_executor(None, lambda: wait_until(what, pred, timeout))

        try:
            await until("cam-resize streaming", lambda: seen("cam-resize", lambda p: "fps" in p))
            server.modes["resize"] = "half"
            await until(
                "the resolution change", lambda: seen("cam-resize", lambda p: p.get("event") == "camera_resolution_changed")
            )
            await until("the black camera's alarm", lambda: seen("cam-black", lambda p: p.get("kind") == "covered"))
            await until("cam-black health", lambda: health("cam-black")["tamper"] == ["covered"])
            await until("the truncated file said", lambda: any("truncated" in f for f in health("cam-trunc")["faults"]))
            await until("the corrupt file said", lambda: health("cam-junk")["faults"])
            await until("the bad model said", lambda: health("cam-model")["last_error"])
            await until("cam-junk signal lost", lambda: seen("cam-junk", lambda p: p.get("kind") == "signal_lost"))
            mark = len(seen("cam-ok", lambda p: "fps" in p))
            await until("cam-ok still streaming", lambda: len(seen("cam-ok", lambda p: "fps" in p)) >= mark + 2)
        finally:
            await vision.stop()
            await buffer.flush()
            stop.set()
            await writer
            await buffer.close()

    with caplog.at_level(logging.INFO, logger="headframe.vision"):
        asyncio.run(run())
    assert health("cam-resize")["faults"] == ["resolution changed from 768x576 to 384x288"]
    assert health("cam-resize")["restarts"] == 0
    assert "truncated or corrupt" in health("cam-trunc")["faults"][0] and "truncated.avi" in health("cam-trunc")["faults"][0]
    assert health("cam-trunc")["restarts"] == 0 and seen("cam-trunc", lambda p: "tamper" in p)  # the frames it has are analysed
    junk = health("cam-junk")["faults"][0]
    assert "junk.avi" in junk and ("cannot open" in junk or "no decodable frame" in junk)
    model = health("cam-model")["last_error"]
    assert model.startswith("camera cam-model: cannot load model model.onnx")
    assert seen("cam-model", lambda p: p.get("event") == "camera_error")
    assert health("cam-ok")["restarts"] == 0 and health("cam-ok")["faults"] == [] and health("cam-ok")["tamper"] == []
    # the operator's log names the camera and the cause
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "camera cam-black: alarm tamper covered raised" in text
    assert "camera cam-resize: stream resolution changed from 768x576 to 384x288" in text
    assert "camera cam-trunc: stream: file" in text and "truncated" in text
    assert "camera cam-model: cannot start analysis: camera cam-model: cannot load model" in text
    # nothing captured lost: every record a worker produced is committed, per camera
    for w in vision.workers:
        produced = sum(w.channel.stats()["produced"].values())
        dropped = sum(w.channel.stats()["dropped"].values())
        from_worker = [r for r in committed if r.source == w.cam.id and r.payload.get("event") != "camera_worker_restart"]
        assert produced - dropped == len(from_worker), w.cam.id
        assert dropped == 0
