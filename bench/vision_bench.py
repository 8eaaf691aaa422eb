"""Vision benchmarks: inference ms per model, pipeline fps vs bare onnxruntime, cameras × fps
sustained, RSS per worker.

    .venv/bin/python -m bench.vision_bench [--frames 60] [--cameras 4] [--fps 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from buffer.record import Kind
from buffer.sink import ListSink
from config import load_settings_text
from config.vision import CameraSettings
from hil.camera_server import CameraServer
from vision.detector import Detector
from vision.pipeline import CameraPipeline
from vision.runtime import Vision

MEDIA = Path(__file__).resolve().parents[1] / "hil" / "media"


def frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / "vtest.avi"))
    out: list[np.ndarray] = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    return out


def bench_models(sample: list[np.ndarray], threads: int) -> None:
    for model in ("ssdlite_person_300", "nanodet_m_416"):
        det = Detector(model, threads=threads)
        impl = det.impl
        tensors = [impl.preprocess(f) for f in sample]
        impl.infer(tensors[0])
        times = []
        for t in tensors:
            t0 = time.perf_counter()
            impl.infer(t)
            times.append((time.perf_counter() - t0) * 1000)
        bare_fps = len(sample) / (sum(times) / 1000)
        cam = CameraSettings.model_validate(
            {
                "id": "b",
                "url": "x",
                "detector": {"model": model, "threads": threads},
                "lines": [{"name": "l", "points": [[0.5, 0], [0.5, 1]]}],
                "zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
            }
        )
        pipe = CameraPipeline(cam, lambda *a: None, detector=det)
        t0 = time.perf_counter()
        for i, f in enumerate(sample):
            pipe.process(f, float(i))
        pipe_fps = len(sample) / (time.perf_counter() - t0)
        print(
            f"{model} ({threads} thread(s)): inference median {statistics.median(times):.1f} ms; "
            f"full pipeline (decode excluded: pre+infer+post+track+analytics+tamper) {pipe_fps:.1f} fps vs bare "
            f"onnxruntime.run {bare_fps:.1f} fps -> ratio {pipe_fps / bare_fps:.2f}  [target >= 0.9x]"
        )


def bench_cameras(n: int, fps: float, seconds: float) -> None:
    server = CameraServer({f"cam{i}": MEDIA / "vtest.avi" for i in range(n)}).start()
    cams = [
        {
            "id": f"cam-{i}",
            "url": server.url(f"cam{i}"),
            "fps": fps,
            "telemetry_interval": 5,
            "detector": {"model": "ssdlite_person_300", "threads": 1},
            "lines": [{"name": "l", "points": [[0.5, 0.15], [0.5, 1]]}],
            "zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        }
        for i in range(n)
    ]
    settings = load_settings_text(json.dumps({"gateway": {"site": "s", "id": "g"}, "cameras": cams}))
    sink = ListSink()
    vision = Vision(settings, sink)
    rss: list[float] = []

    async def run() -> None:
        await vision.start()
        await asyncio.sleep(seconds)
        for w in vision.workers:
            if w.proc is not None:
                rss.append(psutil.Process(w.proc.pid).memory_info().rss / 1e6)
        await vision.stop()

    asyncio.run(run())
    server.stop()
    fpss = [r.payload["fps"] for r in sink.records if r.kind is Kind.TELEMETRY and r.payload.get("fps")]
    last = {}
    for r in sink.records:
        if r.kind is Kind.TELEMETRY and r.payload.get("fps"):
            last[r.source] = r.payload["fps"]
    print(
        f"{n} cameras at {fps} fps requested (SSDLite, 1 thread each): achieved per camera "
        f"{', '.join(f'{v:.1f}' for v in last.values())} fps (all samples min {min(fpss or [0]):.1f}); "
        f"RSS per worker {', '.join(f'{v:.0f}' for v in rss)} MB  [target >= 4 cameras at 4 fps]"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--fps", type=float, default=4)
    ap.add_argument("--seconds", type=float, default=25)
    args = ap.parse_args()
    sample = frames(args.frames)
    bench_models(sample, 1)
    bench_models(sample, 2)
    bench_cameras(args.cameras, args.fps, args.seconds)


if __name__ == "__main__":
    main()
