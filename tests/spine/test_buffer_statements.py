"""The buffer's SQL does not change with batch sizes, so SQLite's memory stays bounded.

Acks (and the eviction's look-up of chain links) used one ``?`` per seq: every batch size was a
new SQL text, prepared and kept in sqlite3's statement cache. After broker outages (acks in all
sizes up to 500) the agent held megabytes of prepared statements: RSS grew with each outage
(docs/benchmarks.md, "Broker flapping").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from buffer import BufferStore, Kind, Record


def store(tmp_path: Path, **kw: object) -> BufferStore:
    return BufferStore(tmp_path / "buf.db", gateway="gw", site="s", **kw)  # type: ignore[arg-type]


def tele(n: int) -> Record:
    return Record("meter-1", Kind.TELEMETRY, {"values": {"p": {"v": n, "unit": "kW", "q": "good"}}})


class Recording:
    """The store's real connection, noting the SQL text of each call (the trace callback would
    show the text with the values bound in, which differs for every call anyway)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.texts: list[str] = []

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.texts.append(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.texts.append(sql)
        return self.db.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def traced(s: BufferStore) -> list[str]:
    rec = Recording(s.db)
    s.db = rec  # type: ignore[assignment]
    return rec.texts


def test_acks_of_every_size_use_one_statement(tmp_path: Path) -> None:
    s = store(tmp_path)
    seqs = s.append([tele(i) for i in range(3000)])
    texts = traced(s)
    i, size = 0, 1
    while i < len(seqs):
        s.ack(seqs[i : i + size])
        i, size = i + size, size % 120 + 1
    deletes = {t for t in texts if t.startswith("DELETE FROM records")}
    assert len(deletes) == 1, f"{len(deletes)} different DELETE statements for acks of 1..120 seqs"
    assert s.db.execute("SELECT count(*) FROM records").fetchone()[0] == 0


def test_evictions_of_every_size_use_one_lookup_statement(tmp_path: Path) -> None:
    s = store(tmp_path, max_bytes=1024 * 1024)
    texts = traced(s)
    n = 0
    for size in range(1, 200):  # past the cap, each batch evicts a different number of records
        s.append([tele(n + k) for k in range(size)])
        n += size
    assert s.counters().get("dropped_cap_telemetry", 0) > 1000
    lookups = {t for t in texts if t.startswith("SELECT seq, body FROM records WHERE seq IN")}
    assert len(lookups) == 1, f"{len(lookups)} different look-up statements for evictions of different sizes"


def _sqlite_memory() -> int | None:
    """SQLITE_STATUS_MEMORY_USED of the library Python's sqlite3 uses (None if it cannot be found)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    cur, high = ctypes.c_int64(), ctypes.c_int64()
    if lib.sqlite3_status64(0, ctypes.byref(cur), ctypes.byref(high), 0) != 0:
        return None
    return cur.value


def test_sqlite_memory_stays_flat_under_acks_of_every_size(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.ack(s.append([tele(i) for i in range(500)]))  # warm: the statement is prepared, the page cache in use
    before = _sqlite_memory()
    if before is None:
        pytest.skip("the SQLite library's memory counter is not reachable through ctypes here")
    for size in range(1, 251):  # what a few outages' backlogs do: acks in every size up to 250
        s.ack(s.append([tele(i) for i in range(size)]))
    grown = (_sqlite_memory() or 0) - before
    assert grown < 256 * 1024, f"SQLite holds {grown / 1024:.0f} KiB more after acks of 1..250 seqs"
