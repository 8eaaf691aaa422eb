"""Evidence clips never fill the buffer's disk: a per-camera budget and a free-space floor.

Real frames (vtest.avi) through OpenCV's VideoWriter; the free-space floor on a real, small
tmpfs (a full disk that is real). Every deletion is a chained ``evidence_clip_removed`` record,
and ``headframe verify --evidence-dir`` accepts a clip missing for that reason only.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from buffer.record import Record
from buffer.store import BufferStore
from tests.support.agentproc import REPO
from vision.clips import ClipRecorder

T0 = 1_780_000_000.0


def record_segments(rec: ClipRecorder, frames: list[np.ndarray], seconds: float) -> None:
    """``seconds`` of frames at 4 fps from T0 (segments of ``rec.segment`` s), then close."""
    for i in range(int(seconds * 4)):
        rec.frame(frames[i % len(frames)], T0 + i * 0.25)
    rec.close()


def events(out: list[Record], name: str) -> list[dict[str, object]]:
    return [r.payload for r in out if r.payload["event"] == name]


def test_the_oldest_clips_go_first_to_keep_the_budget_and_each_is_recorded(
    tmp_path: Path, vtest_frames: list[np.ndarray]
) -> None:
    out: list[Record] = []
    until = mp.get_context("spawn").Value("d", 2e9)
    probe = ClipRecorder("cam-1", tmp_path / "probe", until, out.append, segment=5.0)
    record_segments(probe, vtest_frames, 5.0)
    one = int(events(out, "evidence_clip")[0]["size"])  # type: ignore[call-overload]
    out.clear()

    budget = int(2.5 * one)  # room for two segments, not three
    rec = ClipRecorder("cam-1", tmp_path, until, out.append, segment=5.0, budget=budget)
    record_segments(rec, vtest_frames, 30.0)  # six segments
    clips = events(out, "evidence_clip")
    removed = events(out, "evidence_clip_removed")
    assert len(clips) == 6
    assert [r["file"] for r in removed] == [c["file"] for c in clips[: len(removed)]]  # oldest first
    assert all(r["reason"] == "clip_budget" for r in removed)
    on_disk = sorted((tmp_path / "evidence" / "cam-1").iterdir())
    assert sum(p.stat().st_size for p in on_disk) <= budget
    assert [str(p.relative_to(tmp_path)) for p in on_disk] == [c["file"] for c in clips[len(removed) :]]
    assert len(removed) >= 3


def test_a_restarted_worker_counts_the_clips_already_on_disk(tmp_path: Path, vtest_frames: list[np.ndarray]) -> None:
    out: list[Record] = []
    until = mp.get_context("spawn").Value("d", 2e9)
    record_segments(ClipRecorder("cam-1", tmp_path, until, out.append, segment=5.0), vtest_frames, 10.0)
    first = events(out, "evidence_clip")
    used = sum(int(c["size"]) for c in first)  # type: ignore[call-overload]
    out.clear()
    # the next run (a new recorder, as after an agent restart) may keep only a bit more than that
    rec = ClipRecorder("cam-1", tmp_path, until, out.append, segment=5.0, budget=used + 1000)
    for i in range(20):
        rec.frame(vtest_frames[i], T0 + 100 + i * 0.25)
    rec.close()
    assert [r["file"] for r in events(out, "evidence_clip_removed")][:1] == [first[0]["file"]]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("mount(8) is not installed: the free-space floor is tested on a real tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as CI has): {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_the_clips_leave_the_free_space_floor_and_stop_when_they_cannot(small_disk: Path, vtest_frames: list[np.ndarray]) -> None:
    out: list[Record] = []
    until = mp.get_context("spawn").Value("d", 2e9)
    floor = 4 * 2**20  # of 6 MiB: about 2 MiB for clips
    rec = ClipRecorder("cam-1", small_disk, until, out.append, segment=5.0, min_free=floor)
    record_segments(rec, vtest_frames, 60.0)
    removed = events(out, "evidence_clip_removed")
    assert removed and all(r["reason"] == "clip_min_free" for r in removed)
    assert shutil.disk_usage(small_disk).free >= floor - 2**20  # at most about one segment below the floor
    assert not events(out, "evidence_clip_failed")

    # something else fills the disk: with every clip gone there is still no room, so no segment starts
    out.clear()
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - floor // 2))
    for i in range(20):  # 5 s of frames: one try per segment, not one per frame
        rec.frame(vtest_frames[i % len(vtest_frames)], T0 + 200 + i * 0.25)
    rec.close()
    (failed,) = events(out, "evidence_clip_failed")
    assert "below clip_min_free" in str(failed["error"])
    assert not events(out, "evidence_clip")
    assert not list((small_disk / "evidence" / "cam-1").iterdir())


def test_verify_accepts_a_clip_missing_because_the_chain_says_it_was_removed(
    tmp_path: Path, vtest_frames: list[np.ndarray]
) -> None:
    db = tmp_path / "gw" / "buffer.db"
    db.parent.mkdir()
    out: list[Record] = []
    until = mp.get_context("spawn").Value("d", 2e9)
    record_segments(ClipRecorder("cam-1", db.parent, until, out.append, segment=5.0), vtest_frames, 15.0)
    clips = events(out, "evidence_clip")
    assert len(clips) == 3
    # a budget for one clip: the next run removes the older ones, with records
    rec = ClipRecorder("cam-1", db.parent, until, out.append, segment=5.0, budget=int(clips[-1]["size"]) + 1000)  # type: ignore[call-overload]
    for i in range(20):
        rec.frame(vtest_frames[i], T0 + 100 + i * 0.25)
    rec.close()
    assert len(events(out, "evidence_clip_removed")) == 3
    key = b"k" * 32
    (tmp_path / "chain.key").write_bytes(key + b"\n")
    (tmp_path / "chain.key").chmod(0o600)
    store = BufferStore(db, gateway="gw-test", site="test-site", chain_key=key)
    try:
        store.commit(out)
    finally:
        store.close()
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(r + b"\n" for r in _bodies(db)))
    verify = [sys.executable, "-m", "agent.cli", "verify", "--export", str(export), "--key-file", str(tmp_path / "chain.key")]
    run = subprocess.run([*verify, "--evidence-dir", str(db.parent)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 evidence clip(s) checked" in run.stdout and "3 removed by the gateway's clip budget" in run.stdout

    # a removal record that does not verify (altered after the fact) excuses nothing
    lines = export.read_bytes().splitlines()
    forged = next(i for i, line in enumerate(lines) if b'"evidence_clip_removed"' in line)
    lines[forged] = lines[forged].replace(b'"clip_budget"', b'"clip_budgeT"')
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"\n".join(lines) + b"\n")
    run = subprocess.run(
        [*verify[:-4], "--export", str(tampered), "--key-file", str(tmp_path / "chain.key"), "--evidence-dir", str(db.parent)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and f"evidence clip {clips[0]['file']} is missing" in run.stdout, run.stdout

    # a clip missing WITHOUT a removal record is still a problem
    (db.parent / str(events(out, "evidence_clip")[-1]["file"])).unlink()
    run = subprocess.run([*verify, "--evidence-dir", str(db.parent)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "is missing" in run.stdout, run.stdout


def _bodies(db: Path) -> list[bytes]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return [row[0] for row in con.execute("SELECT body FROM records ORDER BY seq")]
    finally:
        con.close()
