"""The buffer boundary on a real SQLite file: commit subscribers, retry on writer errors,
attachment marks, keyed chain by default, records_dropped events that bridge the chain."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest

from buffer import Attachment, BufferStore, Kind, Record, verify
from buffer.boundary import BufferService, Durability
from buffer.chainkey import ChainKey, key_warning
from config import load_settings_text


def settings(tmp_path: Path, **gateway: Any):
    text = json.dumps(
        {
            "gateway": {"site": "s", "id": "gw", **gateway},
            "buffer": {"path": str(tmp_path / "buf.db"), "max_attachment_bytes": 4096},
        }
    )
    return load_settings_text(text, base_dir=tmp_path)


def run(body: Callable[[BufferService], Coroutine[Any, Any, Any]], svc: BufferService) -> Any:
    async def go() -> Any:
        await svc.open()
        try:
            return await body(svc)
        finally:
            await svc.close()

    return asyncio.run(go())


def docs(db: Path) -> list[dict[str, Any]]:
    store = BufferStore(db, gateway="gw", site="s")
    try:
        return [orjson.loads(r[0]) for r in store.db.execute("SELECT body FROM records ORDER BY seq")]
    finally:
        store.close()


def opened_key(svc: BufferService, *telemetry: int) -> ChainKey:
    """Open ``svc``, commit ``telemetry`` records, close; the key it opened with."""

    async def go() -> ChainKey | None:
        opened = await svc.open()
        try:
            for i in telemetry:
                svc.emit(Record("m", Kind.TELEMETRY, {"i": i}))
            await svc.flush()
        finally:
            await svc.close()
        return opened.chain_key

    ck = asyncio.run(go())
    assert ck is not None
    return ck


def docs_ro(db: Path) -> list[dict[str, Any]]:
    """Committed documents, read while the agent runs (empty until the schema exists)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [orjson.loads(r[0]) for r in conn.execute("SELECT body FROM records ORDER BY seq")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def key_of(tmp_path: Path) -> bytes:
    return (tmp_path / "chain.key").read_bytes().strip()


# ------------------------------------------------------------------ interface
def test_subscribers_see_every_commit_and_lease_returns_documents(tmp_path: Path) -> None:
    seen: list[tuple[int, str, str]] = []

    async def body(svc: BufferService) -> None:
        unsubscribe = svc.subscribe(lambda batch: seen.extend((c.seq, c.record.source, c.chain) for c in batch))
        svc.emit(Record("m", Kind.TELEMETRY, {"i": 1}))
        svc.emit(Record("cam", Kind.ALARM, {"a": 1}, attachments=(Attachment("x.jpg", "image/jpeg", b"jpg"),)))
        assert await svc.flush() == 2
        assert await svc.append([Record("ups", Kind.ALARM, {"alarm": "mains_lost"})], durability=Durability.POWER_LOSS) == [3]
        unsubscribe()
        svc.emit(Record("m", Kind.TELEMETRY, {"i": 2}))
        await svc.flush()
        leased = await svc.lease(10)
        assert [r.seq for r in leased] == [2, 3, 1, 4]  # alarms first
        cam = leased[0]
        assert cam.attachments == (Attachment("x.jpg", "image/jpeg", b"jpg"),) and cam.kind is Kind.ALARM
        assert "data" not in orjson.loads(cam.doc)["attachments"][0]
        assert await svc.ack([2, 3]) == 2
        await svc.release_all()
        assert [r.seq for r in await svc.lease(10)] == [1, 4]
        assert (await svc.stats())["depth"] == 2

    run(body, BufferService(settings(tmp_path)))
    chains = {d["seq"]: d["chain"] for d in docs(tmp_path / "buf.db")}
    assert [(s, src) for s, src, _ in seen] == [(1, "m"), (2, "cam"), (3, "ups")]
    assert all(chains.get(s, c) == c for s, _, c in seen)


# ------------------------------------------------------------- writer errors
def test_sqlite_error_keeps_the_batch_and_retries(tmp_path: Path) -> None:
    """Issue 13: an SQLite error other than disk full must not drop the drained batch."""

    async def body(svc: BufferService) -> None:
        svc.store.db.execute("PRAGMA query_only = ON")  # every write fails: SQLITE_READONLY, not FULL
        for i in range(20):
            svc.emit(Record("m", Kind.TELEMETRY if i % 4 else Kind.ALARM, {"i": i}))
        assert await svc.flush() == 0
        stats = await svc.stats()
        assert stats["writer"] == "error" and "readonly" in stats["last_error"] and stats["uncommitted"] == 20
        with pytest.raises(sqlite3.OperationalError):  # commit-now fails loudly, and keeps the record
            await svc.append([Record("m", Kind.ALARM, {"i": 20})], durability=Durability.POWER_LOSS)
        assert (await svc.stats())["uncommitted"] == 21
        svc.store.db.execute("PRAGMA query_only = OFF")
        for _ in range(100):  # back-off: the retry comes within a few hundred ms
            if await svc.flush():
                break
            await asyncio.sleep(0.05)
        assert (await svc.stats())["writer"] == "ok"

    run(body, BufferService(settings(tmp_path)))
    assert [d["payload"]["i"] for d in docs(tmp_path / "buf.db")] == list(range(21))


def test_retry_backlog_is_bounded_sheds_telemetry_never_alarms_and_says_so(tmp_path: Path) -> None:
    async def body(svc: BufferService) -> None:
        svc.store.db.execute("PRAGMA query_only = ON")
        for i in range(50):
            kind = Kind.ALARM if i % 10 == 0 else Kind.EVENT if i % 10 == 1 else Kind.TELEMETRY
            svc.emit(Record("m", kind, {"i": i}))
        await svc.flush()
        stats = await svc.stats()
        assert stats["uncommitted"] == 20 and stats["counters"]["dropped_writer_error_telemetry"] == 30
        svc.store.db.execute("PRAGMA query_only = OFF")
        for _ in range(100):
            if await svc.flush():
                break
            await asyncio.sleep(0.05)
        stats = await svc.stats()
        assert stats["counters"]["dropped_writer_error_telemetry"] == 30  # now persisted, not doubled

    run(body, BufferService(settings(tmp_path), backlog_limit=20))
    stored = docs(tmp_path / "buf.db")
    kept = [d["payload"]["i"] for d in stored if d["source"] == "m"]
    assert [i for i in kept if i % 10 in (0, 1)] == [i for i in range(50) if i % 10 in (0, 1)]  # every alarm/event
    assert kept == sorted(kept) and len(kept) == 20  # the newest telemetry kept, the oldest shed
    (note,) = [d["payload"] for d in stored if d["payload"].get("event") == "records_dropped"]
    assert note == {
        "event": "records_dropped",
        "reason": "writer_error",
        "count": 30,
        "by_kind": {"telemetry": 30},
        "seqs_assigned": False,
    }
    assert verify(stored, key_of(tmp_path)) == []


def test_emit_queue_overflow_sheds_telemetry_keeps_alarms_and_says_so(tmp_path: Path) -> None:
    async def body(svc: BufferService) -> None:
        for i in range(12):  # no flush in between: a writer that is behind
            svc.emit(Record("m", Kind.ALARM if i % 4 == 0 else Kind.TELEMETRY, {"i": i}))
        await svc.flush()
        assert (await svc.stats())["queue_overflow"] == 6

    run(body, BufferService(settings(tmp_path), queue_limit=5))
    stored = [d["payload"] for d in docs(tmp_path / "buf.db")]
    assert [p["i"] for p in stored if "i" in p] == [0, 1, 2, 3, 4, 8]  # alarms are never refused
    (note,) = [p for p in stored if p.get("event") == "records_dropped"]
    assert note == {
        "event": "records_dropped",
        "reason": "writer_error",
        "count": 6,
        "by_kind": {"telemetry": 6},
        "seqs_assigned": False,
    }


def test_a_payload_that_is_not_json_is_dropped_alone_and_reported(tmp_path: Path) -> None:
    async def body(svc: BufferService) -> None:
        svc.emit(Record("m", Kind.ALARM, {"i": 0}))
        svc.emit(Record("m", Kind.TELEMETRY, {"i": object()}))  # a producer bug
        svc.emit(Record("m", Kind.ALARM, {"i": 2}))
        assert await svc.flush() == 2

    run(body, BufferService(settings(tmp_path)))
    stored = [d["payload"] for d in docs(tmp_path / "buf.db")]
    assert stored[1:] == [{"i": 0}, {"i": 2}]
    assert stored[0] == {
        "event": "records_dropped",
        "reason": "writer_error",
        "count": 1,
        "by_kind": {"telemetry": 1},
        "seqs_assigned": False,
    }


def test_oversize_attachment_marks_only_the_record_that_lost_one(tmp_path: Path) -> None:
    small, big = Attachment("s.jpg", "image/jpeg", b"s" * 100), Attachment("b.jpg", "image/jpeg", b"b" * 5000)

    async def body(svc: BufferService) -> None:
        svc.emit(Record("cam", Kind.ALARM, {"n": 1}, attachments=(small, big)))
        svc.emit(Record("cam", Kind.ALARM, {"n": 2}))
        svc.emit(Record("cam", Kind.ALARM, {"n": 3}, attachments=(small,)))
        assert await svc.flush() == 3
        return {orjson.loads(r.doc)["payload"]["n"]: r for r in await svc.lease(10)}

    got = run(body, BufferService(settings(tmp_path)))
    payloads = {n: orjson.loads(r.doc)["payload"] for n, r in got.items()}
    assert payloads[1] == {"n": 1, "attachments_dropped": "too large"} and got[1].attachments == (small,)
    assert payloads[2] == {"n": 2} and payloads[3] == {"n": 3} and got[3].attachments == (small,)


# ----------------------------------------------------------------- chain key
def test_chain_is_keyed_by_default_with_a_private_key_created_once(tmp_path: Path) -> None:
    async def body(svc: BufferService) -> None:
        svc.emit(Record("m", Kind.TELEMETRY, {"i": 1}))
        await svc.flush()
        assert key_of(tmp_path).decode() not in json.dumps(await svc.stats())

    run(body, BufferService(settings(tmp_path)))
    key_file = tmp_path / "chain.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_of(tmp_path)
    assert len(bytes.fromhex(key.decode())) == 32
    run(body, BufferService(settings(tmp_path)))  # the second start reuses the key
    assert key_of(tmp_path) == key
    stored = docs(tmp_path / "buf.db")
    assert len(stored) == 2 and verify(stored, key) == []
    assert verify(stored) != [] and verify(stored, b"other") != []
    assert not any(key.decode() in json.dumps(d) for d in stored)


def test_unusable_key_gives_an_emergency_key_never_an_unkeyed_chain(tmp_path: Path) -> None:
    """Deliberate change (issue 10): an unusable key used to stop the agent (exit 2, gateway dark);
    now the buffer opens with an emergency key beside it and says why (the daemon raises the alarm)."""
    key = tmp_path / "gw.key"
    key.write_text("secret\n")
    cfg = settings(tmp_path, chain_key_file=str(key))
    key.unlink()  # deleted after the config was checked
    ck = opened_key(BufferService(cfg), 1)
    assert ck.emergency and ck.problem == "missing" and ck.wanted == key
    assert ck.path.parent == tmp_path and ck.path.name.startswith("chain.key.emergency-")
    assert re.search(r"gateway.chain_key_file: .*gw.key does not exist; create it", ck.message or "")
    assert stat.S_IMODE(ck.path.stat().st_mode) == 0o600
    emergency = ck.path.read_bytes().strip()
    assert len(bytes.fromhex(emergency.decode())) == 32
    stored = docs(tmp_path / "buf.db")
    assert stored and verify(stored, emergency) == [] and verify(stored) != []
    assert emergency.decode() not in repr(ck)

    key.write_text(" \n")  # emptied after the check: the same emergency key is reused
    ck2 = opened_key(BufferService(cfg))
    assert ck2.problem == "empty" and ck2.path == ck.path and ck2.fingerprint == ck.fingerprint
    (tmp_path / "chain.key").mkdir()  # the default key path is not a readable file
    ck3 = opened_key(BufferService(settings(tmp_path)))
    assert ck3.emergency and ck3.problem == "unreadable: EISDIR" and ck3.path == ck.path


def test_empty_configured_key_passes_the_config_check(tmp_path: Path) -> None:
    """Deliberate change: the config is valid; ``headframe check`` warns (see test_keyfallback)."""
    (tmp_path / "gw.key").write_text("\n")
    assert settings(tmp_path, chain_key_file=str(tmp_path / "gw.key")).gateway.chain_key_file is not None
    assert "gw.key is empty" in (key_warning(tmp_path / "gw.key") or "")
    (tmp_path / "gw.key").write_text("secret\n")
    (tmp_path / "gw.key").chmod(0o644)
    assert "mode 0644: others can read" in (key_warning(tmp_path / "gw.key") or "")
    (tmp_path / "gw.key").chmod(0o600)
    assert key_warning(tmp_path / "gw.key") is None


# ----------------------------------------------------------- records_dropped
def bridge(stream: list[dict[str, Any]], key: bytes) -> list[str]:
    """A verifier's walk: each record or dropped range must follow the link before it."""
    links: dict[int, tuple[int, str, str]] = {}  # first seq -> (last seq, prev, chain)
    for d in stream:
        links[d["seq"]] = (d["seq"], d["prev"], d["chain"])
        for r in d["payload"].get("ranges", []) if d["payload"].get("event") == "records_dropped" else []:
            links[r["first"]] = (r["last"], r["prev"], r["chain"])
    problems, head, seq = [], None, min(links)
    while seq <= max(links):
        if seq not in links:
            problems.append(f"seq {seq} neither received nor explained")
            seq += 1
            continue
        last, prev, chain = links[seq]
        if head is not None and prev != head:
            problems.append(f"seq {seq} does not follow")
        head, seq = chain, last + 1
    return problems + [str(p) for p in verify(stream, key) if "missing" not in p.what]


def test_ttl_drops_are_named_in_ranges_of_at_most_500_that_bridge_the_chain(tmp_path: Path) -> None:
    now = [1_000_000.0]
    key = b"k"
    s = BufferStore(tmp_path / "b.db", gateway="gw", site="s", chain_key=key, ttl={Kind.TELEMETRY: 60.0}, clock=lambda: now[0])
    for i in range(1200):  # alternate so every telemetry record is its own range
        s.append([Record("m", Kind.TELEMETRY, {"i": i}), Record("a", Kind.ALARM, {"i": i})])
    before = {r.seq: orjson.loads(r.doc) for r in s.lease(5000)}
    now[0] += 61
    assert s.expire() == {"telemetry": 1200}
    s.release_all()
    after = [orjson.loads(r.doc) for r in s.lease(5000)]
    notes = [d["payload"] for d in after if d["payload"].get("event") == "records_dropped"]
    assert [len(n["ranges"]) for n in notes] == [500, 500, 200]
    assert sum(n["count"] for n in notes) == 1200 and all(n["reason"] == "ttl" for n in notes)
    assert all(n["by_kind"] == {"telemetry": n["count"]} for n in notes)
    for note in notes:
        for r in note["ranges"]:
            assert r["prev"] == before[r["first"]]["prev"] and r["chain"] == before[r["last"]]["chain"]
    assert bridge(after, key) == []
    assert bridge([d for d in after if d["payload"].get("event") != "records_dropped"], key)  # unexplained: caught


def test_byte_cap_drop_is_committed_with_the_deletion_and_bridges(tmp_path: Path) -> None:
    key = b"k"
    s = BufferStore(tmp_path / "b.db", gateway="gw", site="s", chain_key=key, max_bytes=60_000)
    pad = "x" * 400
    for i in range(100):
        s.append([Record("te", Kind.TELEMETRY, {"pad": pad, "i": i}), Record("h", Kind.HEALTH, {"i": i})])
    s.close()
    s = BufferStore(tmp_path / "b.db", gateway="gw", site="s", chain_key=key, max_bytes=60_000)
    stream = [orjson.loads(r.doc) for r in s.lease(100_000)]
    notes = [d["payload"] for d in stream if d["payload"].get("event") == "records_dropped"]
    assert notes and all(n["reason"] == "byte_cap" for n in notes)
    counters = s.counters()
    dropped = sum(n["by_kind"].get("telemetry", 0) for n in notes)
    assert dropped == counters["dropped_cap_telemetry"]
    assert sum(n["by_kind"].get("health", 0) for n in notes) == counters["dropped_cap_health"] > 0
    assert s.stats()["bytes"] <= 60_000
    assert bridge(stream, key) == []


def test_export_writes_attachments_beside_the_jsonl_privately(tmp_path: Path) -> None:
    import hashlib
    import subprocess
    import sys

    from tests.support.agentproc import REPO, write_config

    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", 1883, buffer_path=db)
    jpeg = bytes(range(256)) * 4
    s = BufferStore(db, gateway="gw", site="s")
    s.append(
        [
            Record("m", Kind.TELEMETRY, {}),
            Record(
                "cam",
                Kind.ALARM,
                {"alarm": "seal"},
                attachments=(Attachment("../../evil.jpg", "image/jpeg", jpeg), Attachment("b.png", "image/png", b"png")),
            ),
        ]
    )
    s.close()
    out = tmp_path / "x" / "export.jsonl"
    out.parent.mkdir()
    old = os.umask(0o022)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "agent.cli", "buffer", "export", "-c", str(cfg), "-o", str(out)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
    finally:
        os.umask(old)
    assert res.returncode == 0, res.stderr
    assert "exported 2 unsent record(s), 2 attachment file(s) and 0 evidence clip(s)" in res.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    cam = lines[1]
    files = sorted(p.name for p in out.parent.iterdir())
    assert files == ["export.jsonl", "export.jsonl.2.0.evil.jpg", "export.jsonl.2.1.b.png"]
    for idx, meta in enumerate(cam["attachments"]):
        f = next(out.parent.glob(f"export.jsonl.2.{idx}.*"))
        assert hashlib.sha256(f.read_bytes()).hexdigest() == meta["sha256"]
    for p in out.parent.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 2 MiB filesystem (tmpfs) that fills up: needs root, skipped otherwise."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_filesystem_never_stops_the_writer_or_loses_an_alarm(small_disk: Path) -> None:
    """Issue 13: eviction inside the disk-full handler can fail too; alarms must survive."""
    filler = small_disk / "filler"
    filler.write_bytes(b"f" * 600_000)
    cfg = load_settings_text(
        json.dumps({"gateway": {"site": "s", "id": "gw"}, "buffer": {"path": str(small_disk / "buf.db"), "max_bytes": "1GiB"}})
    )
    alarms = 0
    errors: list[str] = []

    async def body(svc: BufferService) -> None:
        nonlocal alarms
        pad = "p" * 1500
        for round_no in range(150):
            for i in range(20):
                svc.emit(Record("m", Kind.TELEMETRY, {"pad": pad, "r": round_no, "i": i}))
            svc.emit(Record("cam", Kind.ALARM, {"n": alarms}))
            alarms += 1
            await svc.flush()  # must never raise
            if svc.last_error:
                errors.append(svc.last_error)
        assert errors and "full" in errors[-1].lower(), "the disk never filled: the test proves nothing"
        filler.unlink()  # the operator frees space
        for _ in range(200):
            await svc.flush()
            if (await svc.stats())["uncommitted"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (await svc.stats())["uncommitted"] == 0

    run(body, BufferService(cfg))
    stored = docs(small_disk / "buf.db")
    assert sorted(d["payload"]["n"] for d in stored if d["source"] == "cam") == list(range(alarms))
    notes = [d["payload"] for d in stored if d["payload"].get("event") == "records_dropped"]
    assert notes and {n["reason"] for n in notes} == {"disk_full"}
    assert all(set(n["by_kind"]) <= {"telemetry", "health"} for n in notes)
    assert bridge(stored, (small_disk / "chain.key").read_bytes().strip()) == []  # every eviction explained


def test_agent_with_an_unusable_default_key_runs_on_an_emergency_key_and_says_why(tmp_path: Path) -> None:
    """Deliberate change (issue 10): this used to exit 2 with the gateway dark."""
    from tests.support.agentproc import AgentProcess, write_config
    from tests.support.broker import free_port
    from tests.support.wait import wait_until

    cfg = write_config(tmp_path / "c.yaml", free_port(), buffer_path=tmp_path / "buf.db")
    (tmp_path / "chain.key").mkdir()
    agent = AgentProcess(cfg)
    try:
        alarm = wait_until(
            "chain_key_unusable",
            lambda: [d["payload"] for d in docs_ro(tmp_path / "buf.db") if d["payload"].get("alarm") == "chain_key_unusable"],
            20,
            interval=0.1,
        )[0]
    finally:
        assert agent.terminate() == 0
    assert alarm["problem"] == "unreadable: EISDIR" and alarm["key_file"] == str(tmp_path / "chain.key")
    out = agent.output()
    assert "chain.key is not readable" in out and "emergency key" in out and "Traceback" not in out
    assert verify(docs(tmp_path / "buf.db"), Path(alarm["emergency_key"]).read_bytes().strip()) == []
