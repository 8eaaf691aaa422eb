"""A rule's state survives SIGKILL of a real agent exactly: never lost, never doubled.

Two rules: the test-only counting rule below, and the real headcount rule (people underground
per shaft, the first test).

A real ``headframe run`` under load (``tests.support.loadgen``) runs the test rule
``tests.rules.counting_rule`` (loaded with the test hook ``HEADFRAME_EXTRA_RULES``). No broker
listens, so nothing is delivered and deleted: after every kill, the count the rule saved must
equal the telemetry rows in the database, and after the restarts its ``counted`` events must be
exactly every ``every``-th record, each once.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.spine.helpers import integrity_ok
from tests.support.agentproc import AgentProcess, write_config
from tests.support.wait import wait_until

KILLS = 5
EVERY = 500
HEADCOUNT_KILLS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counted_state(db: Path) -> tuple[int | None, int, list[int]]:
    """(the count the rule saved, telemetry rows, the counts its events carry) from the file."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        try:
            row = con.execute("SELECT snapshot FROM rule_state WHERE name = 'counting'").fetchone()
        except sqlite3.OperationalError:  # killed before the engine created its table
            row = None
        rows = con.execute("SELECT COUNT(*) FROM records WHERE prio = 2").fetchone()[0]
        events = [
            orjson.loads(b)["payload"]["count"]
            for (b,) in con.execute("SELECT body FROM records WHERE source = 'counting' ORDER BY seq")
        ]
        return (orjson.loads(row[0])["count"] if row else None), int(rows), events
    finally:
        con.close()


def telemetry_rows(db: Path) -> int:
    try:
        return counted_state(db)[1] if db.exists() else 0
    except sqlite3.OperationalError:  # the agent is creating the schema
        return 0


# ------------------------------------------------------------------------------------------------
# The real headcount rule (rules.headcount) under the same kills: people underground per shaft.


def crossings_and_state(db: Path) -> tuple[list[tuple[int, str, str]], dict[str, Any] | None, list[dict[str, Any]]]:
    """(committed crossings as (seq, camera, direction), the rule's saved snapshot, its headcount events)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        try:
            row = con.execute("SELECT snapshot FROM rule_state WHERE name = 'headcount'").fetchone()
        except sqlite3.OperationalError:  # killed before the engine created its table
            row = None
        crossings, events = [], []
        for seq, source, body in con.execute("SELECT seq, source, body FROM records WHERE prio = 1 ORDER BY seq"):
            payload = orjson.loads(body)["payload"]
            if payload.get("event") == "line_crossing":
                crossings.append((seq, source, payload["direction"]))
            elif payload.get("event") == "headcount":
                events.append(payload)
        return crossings, (orjson.loads(row[0]) if row else None), events
    finally:
        con.close()


def per_camera(crossings: list[tuple[int, str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for _, cam, direction in crossings:
        out.setdefault(cam, {"in": 0, "out": 0})[direction] += 1
    return out


def n_crossings(db: Path) -> int:
    """Committed crossings, counted cheaply (polled while the agent ingests)."""
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT COUNT(*) FROM records WHERE source IN ('cam-a', 'cam-b')").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:  # the agent is creating the schema
        return 0


def test_people_underground_survives_sigkill_exactly(tmp_path: Path) -> None:
    """Crossings of two cameras of one shaft go through the real record path (``crossinggen``)
    into the real ``HeadcountRule``; after every SIGKILL the saved count is exactly the committed
    in − out per camera, and every ``headcount`` record ever written equals in − out of the
    crossings committed up to its ``last_seq``: nothing lost, nothing counted twice."""
    rng = random.Random(20261126)
    db = tmp_path / "buf.db"
    far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")  # no daily reset mid-test
    line = {"name": "gate", "points": [[0, 0], [1, 1]], "shaft": "main"}
    extra = {
        "shafts": [{"name": "main", "limit": 10**9, "reconcile_at": far}],
        "cameras": [{"id": cam, "url": "x", "enabled": False, "lines": [line]} for cam in ("cam-a", "cam-b")],
        "rules": {"headcount": {"timezone": "UTC"}},
    }
    cfg = write_config(tmp_path / "c.yaml", free_port(), buffer_path=db, extra=extra)
    env = {
        "HEADFRAME_EXTRA_PRODUCERS": "tests.support.crossinggen",
        "CROSSINGS_CAMERAS": "cam-a,cam-b",
        "CROSSINGS_PATTERN": "in,in,in,out,out",
        "CROSSINGS_RATE": "1000",
    }
    for round_no in range(HEADCOUNT_KILLS + 1):
        before = n_crossings(db)
        agent = AgentProcess(cfg, env=env, log=tmp_path / f"hc-{round_no}.log")
        wait_until(f"round {round_no}: crossings committed", lambda before=before: n_crossings(db) > before + 200, timeout=30)
        if round_no < HEADCOUNT_KILLS:
            time.sleep(rng.uniform(0.0, 1.0))  # a random moment mid-stream
            agent.kill()
        else:
            assert agent.terminate() == 0
        assert integrity_ok(db), f"round {round_no}: database damaged"
        crossings, snap, _ = crossings_and_state(db)
        assert snap is not None, f"round {round_no}: no saved headcount"
        assert snap["high_seq"] == crossings[-1][0], f"round {round_no}: the last committed crossing is not counted"
        assert snap["shafts"]["main"]["cameras"] == per_camera(crossings), f"round {round_no}: saved count != committed"
        assert "Traceback" not in agent.output(), agent.output()[-3000:]
    crossings, _, events = crossings_and_state(db)
    assert len(events) > HEADCOUNT_KILLS and len(crossings) > 1000
    by_seq = {seq: (1 if d == "in" else -1) for seq, _, d in crossings}
    seqs = sorted(by_seq)
    for ev in events:  # each published number: exactly in − out of the crossings committed so far
        want = sum(by_seq[s] for s in seqs if s <= ev["last_seq"])
        assert ev["underground"] == want, f"headcount at seq {ev['last_seq']}: {ev['underground']} != {want}"
    assert events[-1]["underground"] == sum(by_seq.values())
    assert events[-1]["in"] - events[-1]["out"] == sum(by_seq.values())


def test_count_survives_sigkill_exactly(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", free_port(), buffer_path=db)
    env = {
        "HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen",
        "LOADGEN_RATE": "2000",
        "LOADGEN_SOURCES": "4",
        "HEADFRAME_EXTRA_RULES": "tests.rules.counting_rule",
        "COUNTING_EVERY": str(EVERY),
    }
    for round_no in range(KILLS):
        before = counted_state(db)[1] if db.exists() else 0
        agent = AgentProcess(cfg, env=env, log=tmp_path / f"agent-{round_no}.log")
        deadline = time.monotonic() + 30
        while telemetry_rows(db) <= before:  # ingesting, however slow the start
            assert time.monotonic() < deadline, f"round {round_no}: no telemetry committed\n{agent.output()[-3000:]}"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment mid-ingest (the writer commits every 20 ms)
        agent.kill()
        assert integrity_ok(db), f"round {round_no}: database damaged"
        count, rows, _ = counted_state(db)
        assert count == rows, f"round {round_no}: the rule saved {count}, the buffer holds {rows} telemetry records"
        assert "Traceback" not in agent.output(), agent.output()[-3000:]
    agent = AgentProcess(cfg, env=env, log=tmp_path / "final.log")
    time.sleep(1.5)
    assert agent.terminate() == 0
    assert "TEST HOOK HEADFRAME_EXTRA_RULES" in agent.output()
    count, rows, events = counted_state(db)
    assert count == rows and rows > KILLS * EVERY, (count, rows)
    assert events == list(range(EVERY, count + 1, EVERY)), "each count once: nothing lost or counted twice"
    con = sqlite3.connect(db)
    try:
        health = [orjson.loads(b)["payload"] for (b,) in con.execute("SELECT body FROM records WHERE prio = 3")]
    finally:
        con.close()
    # the test rule runs before the alarm manager, which is always there (alarm life needs no config)
    assert health[-1]["rules"] == {"rules": ["hotwork", "counting", "alarms"], "disabled": {}, "failures": {}, "build_errors": {}}
