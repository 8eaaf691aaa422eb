"""``headframe buffer stats|peek|export`` on a buffer written by the real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from buffer import BufferStore, Kind, Record
from tests.support.agentproc import REPO, write_config


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_stats_peek_export(tmp_path: Path) -> None:
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", 1883, buffer_path=db)
    store = BufferStore(db, gateway="gw-test", site="test-site")
    store.append([Record("m", Kind.TELEMETRY, {"i": i}) for i in range(5)] + [Record("cam", Kind.ALARM, {"a": 1})])
    store.ack([1])
    store.close()
    stats = run("buffer", "stats", "-c", str(cfg))
    assert stats.returncode == 0, stats.stderr
    doc = json.loads(stats.stdout)
    assert doc["unsent"]["telemetry"]["records"] == 4 and doc["unsent"]["alarm"]["records"] == 1
    assert doc["state"]["last_seq"] == 6 and doc["counters"]["delivered"] == 1
    peek = run("buffer", "peek", "-c", str(cfg), "-n", "2")
    first = [json.loads(line) for line in peek.stdout.splitlines()]
    assert [d["kind"] for d in first] == ["alarm", "telemetry"]  # lease order: priority first
    out = tmp_path / "export.jsonl"
    exp = run("buffer", "export", "-c", str(cfg), "-o", str(out))
    assert exp.returncode == 0 and "exported 5" in exp.stderr
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == [2, 3, 4, 5, 6]


def test_stats_without_database_explains(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", 1883, buffer_path=tmp_path / "none.db")
    res = run("buffer", "stats", "-c", str(cfg))
    assert res.returncode == 1 and "has not run yet" in res.stderr
