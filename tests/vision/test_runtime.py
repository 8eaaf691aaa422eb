"""Camera workers as real processes on a real MJPEG stream; crash, hang and bad model recovery."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from buffer.record import Kind
from buffer.sink import ListSink
from config import load_settings_text
from hil.camera_server import CameraServer
from tests.support.agentproc import REPO
from tests.vision.conftest import MEDIA
from vision.runtime import Vision


def settings_for(url: str, **camera) -> object:
    cam = {
        "id": "cam-1",
        "url": url,
        "fps": 4,
        "telemetry_interval": 0.5,
        "hang_timeout": 3,
        "detector": {"model": "ssdlite_person_300"},
        "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        **camera,
    }
    return load_settings_text(json.dumps({"gateway": {"site": "s", "id": "g"}, "cameras": [cam]}))


async def run_for(vision: Vision, seconds: float, during=None, until=None, then: float = 0.0) -> None:
    """Run the workers for ``seconds``; or, with ``until``, until ``until()`` holds (``seconds``
    is then the timeout) and ``then`` seconds more."""
    await vision.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if during:
                during()
            if until is not None and until():
                end = min(end, time.monotonic() + then)
                until = None
            await asyncio.sleep(0.2)
    finally:
        await vision.stop()


def test_worker_streams_mjpeg_and_restarts_after_a_crash() -> None:
    server = CameraServer({"vtest": MEDIA / "vtest.avi"}).start()
    sink = ListSink()
    # the product's hang timeout (20 s), not the other tests' 3 s: a restarted worker loading its
    # model on a loaded machine must not be taken for hung — this test is about the crash
    vision = Vision(settings_for(server.url("vtest"), hang_timeout=20), sink)
    killed: dict[str, float] = {}

    def crash_once() -> None:
        w = vision.workers[0]
        tele = [r for r in sink.records if r.kind is Kind.TELEMETRY]
        if not killed and len(tele) >= 2 and w.proc is not None:
            killed["at"] = time.time()
            w.proc.kill()  # a segfault in a codec looks like this

    try:
        asyncio.run(run_for(vision, 16, crash_once))
    finally:
        server.stop()
    worker = vision.workers[0]
    assert killed, "the worker never produced telemetry"
    assert worker.restarts == 1
    restarts = [r for r in sink.records if r.payload.get("event") == "camera_worker_restart"]
    assert restarts and "exited" in restarts[0].payload["reason"]
    # the restarted worker streams again: telemetry observed after the restart was decided
    restart_ts = restarts[0].ts
    tele = [r for r in sink.records if r.kind is Kind.TELEMETRY]
    tele_before = [r for r in tele if r.ts < killed["at"]]
    tele_after = [r for r in tele if r.ts > restart_ts]
    assert len(tele_before) >= 2  # the filter has something to leave out: the first worker's telemetry
    assert len(tele_after) >= 4 and "zones" in tele_after[-1].payload
    assert len(tele_before) + len(tele_after) == len(tele)  # nothing from a dead worker between kill and restart
    assert worker.health()["restarts"] == 1


def test_bad_model_is_reported_and_retried_without_stopping_others(tmp_path: Path) -> None:
    sink = ListSink()
    s = settings_for(
        str(MEDIA / "vtest.avi"),
        detector={"model": "ssdlite_person_300", "model_path": str(tmp_path / "missing.onnx")},
        hang_timeout=20,  # the product's: a worker starting slowly on a loaded machine is not hung
    )
    vision = Vision(s, sink)

    def reported() -> bool:
        h = vision.health()["cameras"]["cam-1"]
        return bool(h["restarts"] >= 1 and h["last_error"])

    asyncio.run(run_for(vision, 40, until=reported))
    health = vision.health()["cameras"]["cam-1"]
    assert health["restarts"] >= 1
    assert "missing.onnx not found" in health["last_error"] and "cam-1" in health["last_error"]


def test_unreachable_stream_raises_signal_lost(tmp_path: Path) -> None:
    sink = ListSink()
    vision = Vision(settings_for("http://127.0.0.1:9/nothing.mjpg", zones=[], fps=2, hang_timeout=20), sink)
    started = time.time()

    def raised() -> bool:
        return any(r.payload.get("kind") == "signal_lost" for r in sink.records)

    # until it is raised (a loaded machine starts the worker late), then 4 s of failed reconnects
    asyncio.run(run_for(vision, 40, until=raised, then=4))
    lost = [r for r in sink.records if r.payload.get("kind") == "signal_lost"]
    # raised once, not again on every failed reconnect
    assert [r.payload["state"] for r in lost] == ["raised"] and "cannot open" in lost[0].payload["reason"]
    assert started < lost[0].ts < time.time()  # stamped when it was seen, not with a (missing) frame's time


def test_replay_cli_prints_json(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "vision",
            "replay",
            "-c",
            str(Path(__file__).parent / "data" / "vtest.yaml"),
            "cam-vtest",
            str(MEDIA / "vtest.avi"),
            "--json",
            "--max-frames",
            "40",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["frames"] == 40 and set(doc) >= {"lines", "zones", "alarms"}
    assert "underground" not in doc  # the headcount per shaft is the rule's (rules/headcount.py), not a camera's
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "vision",
            "replay",
            "-c",
            str(Path(__file__).parent / "data" / "vtest.yaml"),
            "cam-vtest",
            str(tmp_path / "none.avi"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 2 and "cannot open video" in res.stderr
