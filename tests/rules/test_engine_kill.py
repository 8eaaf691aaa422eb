"""A rule's state survives SIGKILL of a real agent exactly: never lost, never doubled.

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
from pathlib import Path

import orjson

from tests.spine.helpers import integrity_ok
from tests.support.agentproc import AgentProcess, write_config

KILLS = 5
EVERY = 500


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
