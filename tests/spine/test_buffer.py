"""The durable buffer on a real SQLite file: seq, lease order, cap, TTL, chain, recovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from buffer import Attachment, AttachmentTooLarge, BufferStore, Kind, Record, verify


def store(tmp_path: Path, **kw) -> BufferStore:
    return BufferStore(tmp_path / "buf.db", gateway="gw", site="s", **kw)


def tele(source: str, n: int) -> Record:
    return Record(source, Kind.TELEMETRY, {"n": n})


def test_seq_strictly_increasing_across_deletes_and_restarts(tmp_path: Path) -> None:
    s = store(tmp_path)
    first = s.append([tele("a", i) for i in range(5)])
    assert first == [1, 2, 3, 4, 5]
    s.ack(first)  # everything deleted: seq must not restart
    s.close()
    s = store(tmp_path)
    assert s.append([tele("a", 9)]) == [6]
    s.close(clean=False)
    s = store(tmp_path)
    assert not s.previous_shutdown_clean
    assert s.append([tele("a", 10)]) == [7]


def test_lease_priority_first_and_order_per_source_kept(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([tele("a", 1), tele("b", 1), Record("a", Kind.HEALTH, {}), tele("a", 2)])
    s.append([Record("cam", Kind.ALARM, {"x": 1}), Record("a", Kind.EVENT, {"e": 1}), tele("b", 2)])
    kinds = [r.kind for r in s.lease(100)]
    assert kinds == [Kind.ALARM, Kind.EVENT, Kind.TELEMETRY, Kind.TELEMETRY, Kind.TELEMETRY, Kind.TELEMETRY, Kind.HEALTH]
    s.release_all()
    leased = s.lease(100)
    per_source = {}
    for r in leased:
        if r.kind is Kind.TELEMETRY:
            per_source.setdefault(r.source, []).append(orjson.loads(r.doc)["payload"]["n"])
    assert per_source == {"a": [1, 2], "b": [1, 2]}


def test_lease_does_not_repeat_until_released_and_ack_deletes(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([tele("a", i) for i in range(10)])
    one, two = s.lease(4), s.lease(4)
    assert {r.seq for r in one}.isdisjoint(r.seq for r in two)
    s.ack([r.seq for r in one])
    s.release_all()
    again = [r.seq for r in s.lease(100)]
    assert again == [5, 6, 7, 8, 9, 10]
    assert s.stats()["depth"] == 6


def test_byte_cap_evicts_telemetry_then_events_alarms_last(tmp_path: Path) -> None:
    s = store(tmp_path, max_bytes=60_000)
    pad = "x" * 400
    s.append([Record("al", Kind.ALARM, {"pad": pad, "i": i}) for i in range(40)])
    s.append([Record("ev", Kind.EVENT, {"pad": pad, "i": i}) for i in range(40)])
    s.append([Record("te", Kind.TELEMETRY, {"pad": pad, "i": i}) for i in range(100)])
    stats = s.stats()
    assert stats["bytes"] <= 60_000
    assert stats["depth_by_kind"]["alarm"] == 40
    assert stats["counters"]["dropped_cap_telemetry"] > 0
    # More alarms: telemetry goes completely before any event, events before alarms.
    s.append([Record("al", Kind.ALARM, {"pad": pad, "i": i}) for i in range(60)])
    stats = s.stats()
    assert stats["depth_by_kind"]["telemetry"] == 0
    assert stats["counters"]["dropped_cap_event"] > 0
    assert stats["bytes"] <= 60_000
    # the survivors of each kind are the newest ones
    remaining_events = [orjson.loads(r.doc)["payload"]["i"] for r in s.lease(1000) if r.source == "ev"]
    assert remaining_events == sorted(remaining_events) and (not remaining_events or remaining_events[-1] == 39)


def test_ttl_expires_records_per_kind(tmp_path: Path) -> None:
    now = [1_000_000.0]
    s = store(tmp_path, ttl={Kind.TELEMETRY: 60.0, Kind.ALARM: 3600.0}, clock=lambda: now[0])
    s.append([tele("a", 1), Record("x", Kind.ALARM, {})])
    now[0] += 30
    s.append([tele("a", 2)])
    assert s.expire() == {}
    now[0] += 45  # first telemetry is 75 s old, second 45 s, alarm 75 s (TTL 1 h)
    assert s.expire() == {"telemetry": 1}
    left = [orjson.loads(r.doc)["payload"] for r in s.lease(10)]
    assert left[0] == {} and left[2] == {"n": 2}
    assert left[1]["event"] == "records_dropped" and left[1]["reason"] == "ttl"  # the removal is explained
    assert s.counters()["expired_telemetry"] == 1
    stats = s.stats()
    assert stats["depth"] == 3
    assert stats["bytes"] == s.db.execute("SELECT SUM(size) FROM records").fetchone()[0]


def test_chain_verifies_and_detects_removed_and_altered_records(tmp_path: Path) -> None:
    key = b"gateway-secret"
    s = store(tmp_path, chain_key=key)
    s.append([tele("a", i) for i in range(20)])
    msgs = [orjson.loads(r.doc) for r in s.lease(100)]
    assert verify(msgs, key) == []
    assert verify(msgs + msgs[:3], key) == []  # duplicates are harmless
    removed = msgs[:7] + msgs[8:]
    problems = verify(removed, key)
    assert [p.seq for p in problems] == [9] and "missing" in problems[0].what
    altered = [dict(m) for m in msgs]
    altered[4]["payload"] = {"n": 999}
    assert [p.seq for p in verify(altered, key)] == [5]
    assert verify(msgs, b"wrong key")  # without the key the chain cannot be forged or checked


def test_chain_continues_across_restart(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([tele("a", 1)])
    msgs = [orjson.loads(r.doc) for r in s.lease(10)]
    s.close()
    s = store(tmp_path)
    s.append([tele("a", 2)])
    msgs += [orjson.loads(r.doc) for r in s.lease(10) if r.seq == 2]
    assert verify(msgs) == []


def test_attachments_stored_with_record_and_capped(tmp_path: Path) -> None:
    s = store(tmp_path, max_attachment_bytes=4096)
    jpeg = bytes(range(256)) * 8
    s.append([Record("cam", Kind.ALARM, {"alarm": "seal"}, attachments=(Attachment("a.jpg", "image/jpeg", jpeg),))])
    (rec,) = s.lease(10)
    doc = orjson.loads(rec.doc)
    import hashlib

    att = doc["attachments"][0]
    assert "data" not in att  # the stored document carries metadata; the uplink's formatter adds data
    assert rec.attachments == (Attachment("a.jpg", "image/jpeg", jpeg),)
    assert att["sha256"] == hashlib.sha256(jpeg).hexdigest() and att["size"] == len(jpeg)
    assert verify([doc]) == []
    with pytest.raises(AttachmentTooLarge, match="max_attachment_bytes"):
        s.append([Record("cam", Kind.ALARM, {}, attachments=(Attachment("b.jpg", "image/jpeg", b"x" * 5000),))])
    s.ack([rec.seq])
    assert s.db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 0


def test_corrupt_database_is_moved_aside_and_seq_never_reused(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([tele("a", i) for i in range(10)])
    s.close()
    (tmp_path / "buf.db").write_bytes(b"this is not a database" * 100)
    s = store(tmp_path)
    assert s.recovered_from is not None and s.recovered_from.exists()
    (new,) = s.append([tele("a", 11)])
    assert new > 10
    assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_disk_full_drops_are_counted_not_crashes(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([Record("al", Kind.ALARM, {"i": 0})])
    pages = s.db.execute("PRAGMA page_count").fetchone()[0]
    s.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own SQLITE_FULL path
    big = "y" * 3000
    for i in range(30):
        s.append([Record("te", Kind.TELEMETRY, {"big": big, "i": i})])
    counters = s.counters()
    assert sum(v for k, v in counters.items() if k.startswith(("dropped_disk_full", "dropped_cap"))) > 0
    assert s.stats()["depth_by_kind"]["alarm"] == 1
    assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_durability_levels_follow_the_policy(tmp_path: Path) -> None:
    s = store(tmp_path, durability={Kind.TELEMETRY: "process_crash", Kind.EVENT: "power_loss"})
    s.append([tele("a", 1)])
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    s.append([tele("a", 2), Record("x", Kind.ALARM, {})])
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for a batch with an alarm
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_written_by_store_is_plain_sqlite(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.append([tele("a", 1)])
    s.close()
    db = sqlite3.connect(tmp_path / "buf.db")
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1


def test_database_from_before_the_ts_column_is_upgraded_in_place(tmp_path: Path) -> None:
    from buffer.store import SCHEMA

    old = SCHEMA.replace("    body BLOB NOT NULL,\n    ts REAL\n", "    body BLOB NOT NULL\n")
    assert old != SCHEMA
    s = store(tmp_path)
    s.append([tele("a", 1)])
    s.close()
    db = sqlite3.connect(tmp_path / "buf.db")  # rebuild the table as an older agent wrote it
    rows = db.execute("SELECT seq, prio, source, created, size, n_att, body FROM records").fetchall()
    db.execute("DROP TABLE records")
    db.executescript(old)
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    s = store(tmp_path)
    (rec,) = s.lease(10)
    assert rec.seq == 1 and rec.ts == rows[0][3]
    assert s.append([tele("a", 2)]) == [2]
