"""Records carry the clock-sync state; seq order never depends on the wall clock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from buffer import BufferStore, Kind, Record
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port


@pytest.mark.parametrize("state", ["synced", "unsynced"])
def test_records_are_flagged_with_clock_state(tmp_path: Path, state: str) -> None:
    db = tmp_path / "buf.db"
    # no broker on this port: everything stays in the buffer for inspection
    agent = AgentProcess(
        write_config(tmp_path / "c.yaml", free_port(), buffer_path=db, health_interval="0.2s"),
        env={"HEADFRAME_CLOCK_OVERRIDE": state},
    )
    time.sleep(1.5)
    assert agent.terminate() == 0
    conn = sqlite3.connect(db)
    docs = [orjson.loads(r[0]) for r in conn.execute("SELECT body FROM records")]
    assert len(docs) >= 3
    assert {d["synced"] for d in docs} == {state == "synced"}
    health = [d["payload"] for d in docs if d["kind"] == "health"]
    assert health[-1]["clock"]["synchronized"] is (state == "synced")


def test_clock_jumping_backwards_does_not_disturb_seq_order(tmp_path: Path) -> None:
    store = BufferStore(tmp_path / "b.db", gateway="g", site="s")
    ts = [1_800_000_000.0, 1_700_000_000.0, 1_900_000_000.0, 1_000.0]  # jumps back and forth
    seqs = [store.append([Record("m", Kind.TELEMETRY, {"i": i}, ts=t)])[0] for i, t in enumerate(ts)]
    assert seqs == sorted(seqs)
    order = [orjson.loads(r.doc)["payload"]["i"] for r in store.lease(10)]
    assert order == [0, 1, 2, 3]
