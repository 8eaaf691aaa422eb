"""Shared checks for spine tests: what the buffer still holds vs what the broker delivered."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson


def buffer_state(db_path: Path) -> tuple[int, set[int]]:
    """(last committed seq, seqs still waiting in the buffer) read from the database file."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT last_seq FROM state").fetchone()
        pending = {r[0] for r in db.execute("SELECT seq FROM records")}
        return (int(row[0]) if row else 0), pending
    except sqlite3.OperationalError:  # the agent is still creating the schema
        return 0, set()
    finally:
        db.close()


def buffered_payloads(db_path: Path, kind: int) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [orjson.loads(r[0])["payload"] for r in db.execute("SELECT body FROM records WHERE prio = ?", (kind,))]
    except sqlite3.OperationalError:  # the agent is still creating the schema
        return []
    finally:
        db.close()


def chain_key(db_path: Path) -> bytes:
    """The key the agent created beside its buffer (keyed chain by default)."""
    return (db_path.parent / "chain.key").read_bytes().strip()


def integrity_ok(db_path: Path) -> bool:
    db = sqlite3.connect(db_path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def first_delivery_order_ok(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """Per (source, kind), the loadgen counters in order of first delivery; returns violations."""
    seen: set[int] = set()
    order: dict[tuple[str, str], list[int]] = {}
    for rec in records:
        if rec["seq"] in seen or not rec["source"].startswith("load-"):
            continue
        seen.add(rec["seq"])
        order.setdefault((rec["source"], rec["kind"]), []).append(rec["payload"]["n"])
    return {key: ns for key, ns in order.items() if ns != sorted(ns)}
