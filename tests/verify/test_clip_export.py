"""``headframe buffer export`` carries the evidence clips; ``headframe verify --evidence-dir`` re-hashes them.

A real clip (vtest.avi through OpenCV's VideoWriter), its chained ``evidence_clip`` record in a
real buffer file, the real CLI for export and verify.
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

from agent.verify.clips import clip_problem
from buffer.record import Record
from buffer.store import BufferStore
from tests.support.agentproc import REPO, write_config
from tests.support.broker import free_port
from tests.vision.conftest import read_frames
from vision.clips import ClipRecorder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_export_copies_clips_and_verify_checks_them(tmp_path: Path) -> None:
    db = tmp_path / "gw" / "buffer.db"
    db.parent.mkdir()
    out: list[Record] = []
    rec = ClipRecorder("cam-1", db.parent, mp.get_context("spawn").Value("d", 2e9), out.append, segment=5.0)
    for i, frame in enumerate(read_frames("vtest.avi", 12)):
        rec.frame(frame, 1_780_000_000.0 + i * 0.25)
    rec.close()
    store = BufferStore(db, gateway="gw-test", site="test-site")
    try:
        store.commit(out)
    finally:
        store.close()
    cfg = write_config(tmp_path / "c.yaml", free_port(), buffer_path=db)
    export = tmp_path / "x" / "export.jsonl"
    export.parent.mkdir()
    run = cli("buffer", "export", "-c", str(cfg), "-o", str(export))
    assert run.returncode == 0 and "and 1 evidence clip(s)" in run.stderr, run.stderr
    copied = export.with_name("export.jsonl.clips") / out[0].payload["file"]
    assert copied.read_bytes() == (db.parent / out[0].payload["file"]).read_bytes()
    verify = ["verify", "--export", str(export), "--no-key-ok", "--evidence-dir", str(export) + ".clips"]
    run = cli(*verify)
    assert run.returncode == 0 and "1 evidence clip(s) checked" in run.stdout, run.stdout + run.stderr
    copied.unlink()
    run = cli(*verify)
    assert run.returncode == 1 and f"evidence clip {out[0].payload['file']} is missing" in run.stdout, run.stdout


def test_a_hostile_clip_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    payload = {"event": "evidence_clip", "file": "../secret", "size": 1, "sha256": "0" * 64}
    assert "points outside the evidence directory" in str(clip_problem(tmp_path / "root", payload))


def test_export_never_truncates_the_clip_nor_writes_outside_its_folder(tmp_path: Path) -> None:
    from agent.cli_spine import copy_clip

    root = tmp_path / "buf"
    clip = root / "evidence" / "cam" / "c.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x" * 1000)
    out = tmp_path / "exp" / "e.jsonl"
    out.parent.mkdir()
    # an absolute name of the clip itself: the export must not open it for writing
    assert copy_clip({"event": "evidence_clip", "file": str(clip)}, root, out) == 0
    assert clip.read_bytes() == b"x" * 1000
    # a name with '..' that comes back inside the root: refused, nothing written beside the export
    assert copy_clip({"event": "evidence_clip", "file": "../buf/evidence/cam/c.mp4"}, root, out) == 0
    assert not (tmp_path / "exp" / "buf").exists()
    # the honest name is copied under <export>.clips
    assert copy_clip({"event": "evidence_clip", "file": "evidence/cam/c.mp4"}, root, out) == 1
    assert (tmp_path / "exp" / "e.jsonl.clips" / "evidence" / "cam" / "c.mp4").read_bytes() == b"x" * 1000
