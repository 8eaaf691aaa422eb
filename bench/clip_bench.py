"""Evidence clip formats through this machine's OpenCV: size per minute, encode time, what a kill leaves.

``python -m bench.clip_bench [--seconds 60] [--fps 4]``: the frames of hil/media/vtest.avi
(768x576) are written as one clip per format with ``cv2.VideoWriter``; then a child process
writes 12 frames and is SIGKILLed mid-segment (no release) and the frames still readable are
counted. The baseline is the raw frames (what storing them uncompressed would take). The figures
choose ``rules.hotwork.clip_format`` and the clip storage (docs/rules.md, "Hot work").
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

MEDIA = Path(__file__).resolve().parents[1] / "hil" / "media" / "vtest.avi"
FORMATS = [("avi", "MJPG"), ("mp4", "mp4v"), ("mp4", "avc1")]
KILLED = """
import os, signal, sys
import cv2
import numpy as np
cap = cv2.VideoCapture(sys.argv[1])
w = cv2.VideoWriter(sys.argv[2], cv2.VideoWriter.fourcc(*sys.argv[3]), 4.0, (768, 576))
for _ in range(12):
    w.write(cap.read()[1])
os.kill(os.getpid(), signal.SIGKILL)
"""


def readable(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=4.0)
    args = ap.parse_args()
    n = int(args.seconds * args.fps)
    cap = cv2.VideoCapture(str(MEDIA))
    frames: list[np.ndarray] = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(frame)
    h, w = frames[0].shape[:2]
    raw = sum(f.nbytes for f in frames)
    print(f"{n} frames {w}x{h} ({args.seconds:g} s at {args.fps:g} fps); baseline raw frames: {raw / 1e6:.1f} MB")
    print(f"{'format':14} {'opens':6} {'MB/clip':>8} {'ratio':>7} {'ms/frame':>9} {'read back':>10} {'after SIGKILL':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for ext, fourcc in FORMATS:
            path = Path(tmp) / f"clip-{fourcc}.{ext}"
            t = time.perf_counter()
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), args.fps, (w, h))
            opened = writer.isOpened()
            if opened:
                for f in frames:
                    writer.write(f)
            writer.release()
            ms = (time.perf_counter() - t) * 1000 / n
            if not opened:
                print(f"{fourcc + '/' + ext:14} {'no':6} {'-':>8} {'-':>7} {'-':>9} {'-':>10} {'-':>14}")
                continue
            size = path.stat().st_size
            killed = Path(tmp) / f"killed-{fourcc}.{ext}"
            child = subprocess.run([sys.executable, "-c", KILLED, str(MEDIA), str(killed), fourcc], capture_output=True)
            left = f"{readable(killed)}/12" if child.returncode == -signal.SIGKILL and killed.exists() else "n/a"
            print(
                f"{fourcc + '/' + ext:14} {'yes':6} {size / 1e6:8.1f} {size / raw:7.3f} {ms:9.2f} {readable(path):>10} {left:>14}"
            )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
