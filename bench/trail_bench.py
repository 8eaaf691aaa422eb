"""What "replay the last minutes with this line" costs: recounting the track trail vs re-detecting video.

Runs the real pipeline (SSDLite person detector, tracker) over vtest.avi at 5 fps, tiles its trail to
a full ring (5 minutes at 5 fps = 1500 frames), and measures, in this process: the trail's size as
sent over the worker's pipe, unpickling it, and recounting it with one line — against the baseline,
the detector + tracker time per frame the same minutes would cost to replay as video.

    .venv/bin/python -m bench.trail_bench
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import cv2
import numpy as np

from config.vision import CameraSettings, LineSettings
from vision.pipeline import CameraPipeline
from vision.trail import Trail, TrailFrame, recount

VIDEO = Path(__file__).resolve().parents[1] / "hil" / "media" / "vtest.avi"
LINE = {"name": "mid", "points": [[0.5, 0.15], [0.5, 1.0]], "band": 0.015}


def main(frames: int = 150, ring: int = 1500) -> None:
    cam = CameraSettings.model_validate(
        {
            "id": "c",
            "url": "x",
            "fps": 5,
            "detector": {"model": "ssdlite_person_300", "score_threshold": 0.5},
            "tamper": {"enabled": False},
            "lines": [LINE],
        }
    )
    pipeline = CameraPipeline(cam, lambda record: None)
    cap = cv2.VideoCapture(str(VIDEO))
    video: list[np.ndarray] = []
    while len(video) < frames:  # every other frame of a 10 fps video: 5 fps
        ok, frame = cap.read()
        ok = ok and cap.grab()
        if not ok:
            break
        video.append(frame)
    cap.release()
    started = time.process_time()
    for i, frame in enumerate(video):
        pipeline.process(frame, 1000 + i * 0.2)
    per_frame = (time.process_time() - started) / len(video)
    assert pipeline.trail is not None
    base = pipeline.trail.copy()
    n = len(base.frames)
    tiled = [
        TrailFrame(f.index + k * n, f.ts + k * n * 0.2, tuple((e[0] + k * 100_000, *e[1:]) for e in f.tracks))
        for k in range(ring // n + 1)
        for f in base.frames
    ][:ring]
    trail = Trail("c", base.size, tuple(tiled))
    blob = pickle.dumps(trail)
    started = time.process_time()
    pickle.loads(blob)
    unpickle = time.process_time() - started
    started = time.process_time()
    counts = recount(trail, [LineSettings.model_validate(LINE)])
    spent = time.process_time() - started
    entries = sum(len(f.tracks) for f in trail.frames)
    video_s = per_frame * ring
    print(f"ring: {ring} frames, {entries} track entries, {len(blob) / 1e6:.2f} MB pickled")
    print(f"recount, one line: {spent:.3f} s CPU (+ unpickle {unpickle:.3f} s) -> {counts}")
    print(f"baseline, re-detecting the same minutes: {per_frame * 1000:.1f} ms/frame x {ring} = {video_s:.1f} s CPU")
    print(f"ratio: {video_s / (spent + unpickle):.0f}x less CPU")


if __name__ == "__main__":
    main()
