"""Evidence clips from real frames (vtest.avi) through OpenCV's real VideoWriter.

Segments roll by frame time, recording stops at the order's ``until``, each file's SHA-256 is
in its record, and a segment a killed worker left unfinished is announced at the next start.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from buffer.record import Record
from tests.support.agentproc import REPO
from tests.vision.conftest import MEDIA
from vision.clips import ClipRecorder


def frames_of(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_segments_stop_at_until_and_hashes_match(tmp_path: Path, vtest_frames: list[np.ndarray]) -> None:
    until = mp.get_context("spawn").Value("d", 0.0)
    out: list[Record] = []
    rec = ClipRecorder("cam-1", tmp_path, until, out.append, segment=5.0, fmt="mp4", fps=4.0)
    t0 = 1_780_000_000.0
    for i, frame in enumerate(vtest_frames[:8]):  # no order yet: nothing recorded
        rec.frame(frame, t0 + i * 0.25)
    assert out == [] and not (tmp_path / "evidence").exists()
    until.value = t0 + 2 + 12  # record 12 s from t0 + 2
    ts = [t0 + 2 + i * 0.25 for i in range(60)]  # 15 s of frames at 4 fps
    for i, t in enumerate(ts):
        rec.frame(vtest_frames[i % len(vtest_frames)], t)
    rec.close()
    clips = [r.payload for r in out]
    assert [c["event"] for c in clips] == ["evidence_clip"] * 3
    assert [c["frames"] for c in clips] == [20, 20, 8]  # 5 s, 5 s, then until (12 s = 48 frames)
    for c in clips:
        data = (tmp_path / c["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == c["sha256"] and len(data) == c["size"]
        assert frames_of(tmp_path / c["file"]) == c["frames"] and c["content_type"] == "video/mp4"
    assert not list((tmp_path / "evidence" / "cam-1").glob("*.part.*"))


KILLED_WORKER = """
import multiprocessing as mp, os, signal, sys
from pathlib import Path
import cv2
from tests.support.agentproc import REPO
from tests.vision.conftest import MEDIA
from vision.clips import ClipRecorder
cap = cv2.VideoCapture(sys.argv[2])
rec = ClipRecorder("cam-1", Path(sys.argv[1]), mp.Value("d", 2e9), print, segment=60.0, fmt=sys.argv[3], fps=4.0)
for i in range(12):
    rec.frame(cap.read()[1], 1_780_000_000.0 + i * 0.25)
os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-segment: no release, no record
"""


@pytest.mark.parametrize("fmt", ["avi", "mp4"])
def test_a_segment_left_by_a_killed_worker_is_announced_as_interrupted(tmp_path: Path, fmt: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, str(tmp_path), str(MEDIA / "vtest.avi"), fmt], cwd=REPO, timeout=60
    )
    assert child.returncode == -signal.SIGKILL
    (part,) = (tmp_path / "evidence" / "cam-1").glob(f"*.part.{fmt}")
    out: list[Record] = []
    ClipRecorder("cam-1", tmp_path, mp.get_context("spawn").Value("d", 0.0), out.append, fmt=fmt).recover()
    (clip,) = [r.payload for r in out]
    assert clip["interrupted"] is True and clip["frames"] is None and not part.exists()
    data = (tmp_path / clip["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == clip["sha256"] and len(data) == clip["size"] > 0
    readable = frames_of(tmp_path / clip["file"])
    if fmt == "avi":  # MJPEG-in-AVI stays playable without its index (measured: 11 of 12 frames)
        assert readable >= 10, readable
    else:  # MP4's index (moov) is written at close: the documented cost of the 4x smaller format
        assert readable == 0, readable


def test_a_lost_stream_still_ends_the_segment_when_the_order_runs_out(tmp_path: Path, vtest_frames: list[np.ndarray]) -> None:
    until = mp.get_context("spawn").Value("d", 1_780_000_010.0)
    out: list[Record] = []
    rec = ClipRecorder("cam-1", tmp_path, until, out.append, segment=60.0)
    for i, frame in enumerate(vtest_frames[:6]):
        rec.frame(frame, 1_780_000_000.0 + i * 0.25)
    rec.idle(1_780_000_005.0)  # no frames, order still running: the segment stays open
    assert out == []
    rec.idle(1_780_000_010.0)  # the order ran out while the stream is lost
    (clip,) = [r.payload for r in out]
    assert clip["frames"] == 6 and not list((tmp_path / "evidence" / "cam-1").glob("*.part.*"))
