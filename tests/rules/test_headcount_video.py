"""Two cameras of one shaft on real video, through a real agent restarted between them.

Camera A watches vtest.avi from its start, camera B a second clip (vtest.avi from frame 300,
written here); each is streamed over HTTP MJPEG by ``hil.camera_server`` into a real
``headframe run`` (its camera worker process, its buffer). The agent runs with A, stops, and
runs again with B. The shaft's headcount must be the sum over both cameras, and equal to what
each camera's own line counter reported.

The rule runs where it runs in production: in the agent's rules engine, inside the buffer's
commit transaction (``rules.engine``, registry family ``rules.headcount``); the agent's own
``headcount`` records and its saved ``rule_state`` are checked. (An earlier version also had a
test-harness mode, ``EngineStandIn``, for a tree without the engine; the engine is on main now.)
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2

from buffer.record import Committed, Kind, Record
from hil.camera_server import CameraServer
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.vision.conftest import MEDIA

KIND_BY_PRIO = {k.priority: k for k in Kind}


def clip(src: Path, dst: Path, start: int, frames: int) -> Path:
    """A second real clip: ``frames`` frames of ``src`` from frame ``start``."""
    cap = cv2.VideoCapture(str(src))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out: Any = None
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        if out is None:
            h, w = frame.shape[:2]
            out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
        out.write(frame)
    cap.release()
    out.release()
    return dst


def committed(db: Path, after: int = 0) -> list[Committed]:
    """Records the agent committed with seq > ``after``, rebuilt from the stored documents."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT seq, prio, source, body, ts FROM records WHERE seq > ? ORDER BY seq", (after,)).fetchall()
    finally:
        con.close()
    return [
        Committed(seq, Record(src, KIND_BY_PRIO[prio], json.loads(body)["payload"], ts=ts), "")
        for seq, prio, src, body, ts in rows
    ]


def crossings(db: Path, camera: str) -> list[dict]:
    return [
        c.record.payload for c in committed(db) if c.record.source == camera and c.record.payload.get("event") == "line_crossing"
    ]


def agent_headcounts(db: Path) -> list[dict]:
    return [c.record.payload for c in committed(db) if c.record.payload.get("event") == "headcount"]


def saved_headcount(db: Path) -> dict[str, Any]:
    """The headcount rule's snapshot as the engine committed it (``rule_state``)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (blob,) = con.execute("SELECT snapshot FROM rule_state WHERE name = 'headcount'").fetchone()
    finally:
        con.close()
    return dict(json.loads(blob))


def run_agent(tmp_path: Path, name: str, doc: dict, db: Path, camera: str, want: int, limit: float) -> None:
    cfg = write_config(tmp_path / f"{name}.yaml", free_port(), buffer_path=db, extra=doc)
    agent = AgentProcess(cfg)
    try:
        end = time.monotonic() + limit
        while time.monotonic() < end and agent.proc.poll() is None:
            time.sleep(1)
            if db.exists() and len(crossings(db, camera)) >= want:
                break
    finally:
        rc = agent.terminate(30)
    assert rc == 0, agent.output()[-3000:]


def test_two_cameras_of_one_shaft_across_an_agent_restart(tmp_path: Path) -> None:
    second = clip(MEDIA / "vtest.avi", tmp_path / "clip-b.avi", 300, 300)
    server = CameraServer({"a": MEDIA / "vtest.avi", "b": second}).start()
    db = tmp_path / "buffer.db"
    later = (datetime.now() + timedelta(hours=12)).strftime("%H:%M")  # no reconciliation during the test

    def config(enabled: str) -> dict:
        cams = [
            {
                "id": f"cam-{n}",
                "url": server.url(n),
                "enabled": n == enabled,
                "fps": 5,
                "role": "shaft",
                "telemetry_interval": 5,
                "tamper": {"enabled": False},
                "detector": {"model": "ssdlite_person_300", "threads": 1},
                "lines": [{"name": "gate", "points": [[0.5, 0.15], [0.5, 1.0]], "band": 0.015, "shaft": "main"}],
            }
            for n in ("a", "b")
        ]
        return {"shafts": [{"name": "main", "limit": 50, "reconcile_at": later}], "cameras": cams}

    try:
        run_agent(tmp_path, "run-a", config("a"), db, "cam-a", want=4, limit=90)
        run_agent(tmp_path, "run-b", config("b"), db, "cam-b", want=3, limit=90)
    finally:
        server.stop()

    a, b = crossings(db, "cam-a"), crossings(db, "cam-b")
    assert a and b, (len(a), len(b))
    assert all(p["shaft"] == "main" for p in a + b)
    people = [p for p in a + b if p["class"] == "person"]
    expected = sum(1 if p["direction"] == "in" else -1 for p in people)
    events = agent_headcounts(db)
    last = events[-1]
    # what each camera's own line counter reported (cumulative in its last event)
    own = {cam: {"in": ps[-1]["in"], "out": ps[-1]["out"]} for cam, ps in (("cam-a", a), ("cam-b", b))}
    assert last["cameras"] == own, (last, own)
    assert last["underground"] == expected == sum(c["in"] - c["out"] for c in own.values())
    assert last["in"] == own["cam-a"]["in"] + own["cam-b"]["in"]
    # camera A's part was counted before the restart and carried across it in the snapshot
    first_run = [e for e in events if set(e["cameras"]) == {"cam-a"}]
    assert first_run and first_run[-1]["cameras"]["cam-a"] == own["cam-a"]
    # and the engine's saved state (committed with the crossings) holds the same numbers
    saved = saved_headcount(db)["shafts"]["main"]["cameras"]
    assert saved == own, (saved, own)
