"""SQLite (WAL) store-and-forward queue: append, lease/ack, byte cap, TTL, integrity chain.

Not thread-safe by design: ``buffer.boundary`` gives it one thread of its own. Every public
method is one short transaction, so a ``kill -9`` at any instant leaves a consistent database.
It stores canonical chained record documents; it knows nothing of topics or MQTT.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from buffer import chain
from buffer.backlog import SHEDDABLE
from buffer.dropped import skipped_record
from buffer.eviction import Eviction
from buffer.processor import CommitProcessor, Processing
from buffer.record import KIND_BY_PRIORITY, Attachment, Committed, Kind, Record, StoredRecord
from buffer.recovery import open_or_recover
from buffer.reserve import DEFAULT_RESERVE, DiskReserve
from buffer.seqfloor import SeqFloor

log = logging.getLogger("headframe.buffer")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    prio INTEGER NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    n_att INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL,
    ts REAL
);
CREATE INDEX IF NOT EXISTS records_prio_seq ON records (prio, seq);
CREATE TABLE IF NOT EXISTS attachments (
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (seq, idx)
);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    chain_head TEXT NOT NULL,
    total_bytes INTEGER NOT NULL,
    clean_shutdown INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS boot (id INTEGER PRIMARY KEY CHECK (id = 1), boot_id TEXT NOT NULL);
"""

#: SQLite's synchronous level per durability class: NORMAL survives a process kill in WAL
#: mode (the WAL is in the OS cache); FULL fsyncs the WAL at every commit (power loss).
#: how often a commit may try to make the disk reserve again after it was released or failed
RESERVE_RETRY_S = 60.0
_SYNC = {"process_crash": "NORMAL", "power_loss": "FULL"}


_KIND_VALUE = {k: k.value for k in Kind}  # Enum attribute access is slow on the hot path
_KIND_PRIO = {k: k.priority for k in Kind}
#: Statements that take a list of seqs take it as one JSON array: the SQL text never changes, so
#: it is prepared once. ``IN (?, ?, ...)`` with one placeholder per seq made a new statement for
#: every batch size; each was kept in sqlite3's statement cache (128 of them, up to ~30 KB each
#: for 500 seqs), so after a few broker outages (acks in every size) the agent carried megabytes
#: of prepared statements, and the cache churn fragmented the heap (docs/benchmarks.md, flapping).
SEQS_JSON = "SELECT value FROM json_each(?)"
_ACK = f"DELETE FROM records WHERE seq IN ({SEQS_JSON}) RETURNING size, n_att, seq"
_INSERT = "INSERT INTO records (seq, prio, source, created, size, n_att, body, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def current_boot_id() -> str:
    """The kernel's id of this boot ("" if unknown): the page cache lives exactly that long.

    ``HEADFRAME_FAKE_BOOT_ID`` is a TEST HOOK for a simulated reboot (HIL rig, tests).
    """
    fake = os.environ.get("HEADFRAME_FAKE_BOOT_ID")
    if fake:
        return fake
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class AttachmentTooLarge(ValueError):
    """An attachment above the configured cap; the producer should shrink it (JPEG quality)."""


class BufferFull(sqlite3.OperationalError):
    """The disk is full even after evicting low-priority records; nothing of the batch was stored."""


def is_full(exc: BaseException) -> bool:
    """SQLITE_FULL, by error code (never by message text)."""
    if isinstance(exc, BufferFull) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def _may_use_reserve(records: Sequence[Record]) -> bool:
    """Alarms and events without attachments (a snapshot's JPEG is not worth an alarm's room)."""
    return all(r.kind not in SHEDDABLE and not r.attachments for r in records)


class BufferStore(Eviction, Processing):
    """The durable queue between producers and the uplink."""

    def __init__(
        self,
        path: str | Path,
        *,
        gateway: str,
        site: str,
        max_bytes: int = 1024**3,
        max_attachment_bytes: int = 2 * 1024**2,
        ttl: dict[Kind, float] | None = None,
        durability: dict[Kind, str] | None = None,
        chain_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
        boot_id: str | None = None,
        max_unsynced_s: float = 5.0,
        processor: CommitProcessor | None = None,
        reserve_bytes: int = DEFAULT_RESERVE,
    ) -> None:
        self.path = Path(path)
        self.gateway, self.site = gateway, site
        self.max_bytes, self.max_attachment_bytes = max_bytes, max_attachment_bytes
        self.ttl = ttl or {}
        self.durability = {k: "process_crash" for k in Kind} | {Kind.ALARM: "power_loss"} | (durability or {})
        self.chain_key = chain_key
        self.clock = clock
        #: Clock state stamped on records the store writes itself (records_dropped).
        self.clock_synced: bool | None = None
        self.boot_id = current_boot_id() if boot_id is None else boot_id
        #: Longest a process_crash commit may stay only in the page cache: the next commit after
        #: this long is fsynced (FULL), which makes every earlier WAL frame durable too. Bounds what
        #: a power cut takes from telemetry and health to about this window (0 = no bound).
        self.max_unsynced_s = max_unsynced_s
        self._last_full = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_from: Path | None = None
        self.db, self.recovered_from = open_or_recover(self.path, SCHEMA)
        self.floor = SeqFloor(self.path.with_name(self.path.name + ".seq"))
        self._load_state()
        self._cursor = {p: 0 for p in KIND_BY_PRIORITY}
        self._sync = ""
        self._iso_sec, self._iso_prefix = -1, ""
        self._last_evict_log, self._evicted_since_log = -1e9, 0
        self._snapshot = (self.last_seq, self.chain_head, self.total_bytes)
        self._side: list[Committed] = []
        self._side_mark = 0
        #: derives records inside each commit transaction (the site rules); see buffer/processor.py
        self.processor = processor
        self._derived_power_loss = False
        if processor is not None:
            processor.open(self.db, self._insert_derived)
        if self.seq_resumed_from is not None:
            self._note_seq_skip(self.seq_resumed_from)
        self.reserve = DiskReserve(self.path.with_name(self.path.name + ".reserve"), reserve_bytes)
        self._reserve_tried = time.monotonic()
        self.reserve.ensure()

    # ----------------------------------------------------------------- state
    def _load_state(self) -> None:
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(records)")}
        if "ts" not in columns:  # databases written before records kept their observation time
            self.db.execute("ALTER TABLE records ADD COLUMN ts REAL")
            self.db.execute("UPDATE records SET ts = created")  # the best time they still have
            self.db.commit()
        row = self.db.execute("SELECT last_seq, chain_head, total_bytes, clean_shutdown FROM state").fetchone()
        if row is None:
            start = self.floor.read()
            self.db.execute("INSERT INTO state VALUES (1, ?, ?, 0, 1)", (start, chain.GENESIS))
            self.db.commit()
            row = (start, chain.GENESIS, 0, 1)
        self.last_seq, self.chain_head = int(row[0]), str(row[1])
        self.previous_shutdown_clean = bool(row[3])
        self.seq_resumed_from: int | None = None
        booted = self.db.execute("SELECT boot_id FROM boot").fetchone()
        if not self.previous_shutdown_clean and (booted is None or not self.boot_id or booted[0] != self.boot_id):
            # Unclean stop and the machine rebooted since (power cut, kernel crash): commits of
            # process_crash durability that were only in the page cache are gone, but their seqs
            # may have been sent. Resume above the fsynced reservation so no seq is ever reused.
            floor = self.floor.read()
            if floor > self.last_seq:
                log.warning(
                    "buffer: unclean stop before a reboot; seqs after %d may have been issued and lost, numbering resumes at %d",
                    self.last_seq,
                    floor + 1,
                )
                self.seq_resumed_from, self.last_seq = self.last_seq, floor
        self.db.execute("INSERT OR REPLACE INTO boot VALUES (1, ?)", (self.boot_id,))
        self.total_bytes = int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()[0])
        self.db.execute("UPDATE state SET clean_shutdown = 0, total_bytes = ?, last_seq = ?", (self.total_bytes, self.last_seq))
        self.db.commit()
        self.floor.ensure_above(self.last_seq)

    def _note_seq_skip(self, resumed_from: int) -> None:
        """Explain the seqs skipped after a power cut with a chained ``records_dropped`` event.

        The skipped seqs were reserved before the cut: some may have been committed to the page
        cache only (and perhaps sent), the rest were never issued. The chain resumes from the last
        record that survived, so the range's ``prev`` and ``chain`` are both that record's chain.
        """
        note = skipped_record(resumed_from + 1, self.last_seq, self.chain_head, self.clock(), self.clock_synced)
        self.set_sync("FULL")
        seqs, chains = self._insert([note], power_loss=True)
        self._save_state()
        self.db.commit()
        self._side.extend(Committed(s, note, c) for s, c in zip(seqs, chains, strict=True))

    def record_ts(self, seq: int) -> float | None:
        """Observation time of record ``seq`` if it is still stored (not yet delivered)."""
        row = self.db.execute("SELECT ts FROM records WHERE seq = ?", (seq,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def counters(self) -> dict[str, int]:
        return {name: int(v) for name, v in self.db.execute("SELECT name, value FROM counters")}

    def _count(self, name: str, n: int) -> None:
        if n:
            self.db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )

    def set_sync(self, level: str) -> None:
        if level != self._sync:
            self.db.execute(f"PRAGMA synchronous = {level}")
            self._sync = level

    # ---------------------------------------------------------------- append
    def _document(self, seq: int, rec: Record, prev: str) -> tuple[bytes, str]:
        """The canonical record document (JSON bytes) and its chain hash; hot path, built once.

        The document is the canonical form (sorted keys) with ``chain`` appended at the end,
        so the hashed bytes are serialised only once. Attachments appear as metadata only.
        """
        doc: dict[str, Any] = {
            "gateway": self.gateway,
            "site": self.site,
            "seq": seq,
            "ts": self._iso(rec.ts),
            "synced": bool(rec.clock_synced),
            "source": rec.source,
            "kind": _KIND_VALUE[rec.kind],
            "payload": rec.payload,
            "prev": prev,
        }
        if rec.attachments:
            doc["attachments"] = [
                {
                    "name": a.name,
                    "content_type": a.content_type,
                    "size": len(a.data),
                    "sha256": hashlib.sha256(a.data).hexdigest(),
                }
                for a in rec.attachments
            ]
        canon = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        digest = chain.link_bytes(prev, canon, self.chain_key)
        return canon[:-1] + b',"chain":"' + digest.encode() + b'"}', digest

    def _iso(self, ts: float) -> str:
        """ISO-8601 UTC with milliseconds; the date part is cached per second (hot path)."""
        sec = int(ts)
        if sec != self._iso_sec:
            self._iso_sec, self._iso_prefix = sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
        return f"{self._iso_prefix}{int((ts - sec) * 1000):03d}Z"

    def check_attachments(self, records: Sequence[Record]) -> None:
        for rec in records:
            for att in rec.attachments:
                if len(att.data) > self.max_attachment_bytes:
                    raise AttachmentTooLarge(
                        f"attachment {att.name!r} of {rec.source} is {len(att.data)} bytes; "
                        f"the cap is {self.max_attachment_bytes} (buffer.max_attachment_bytes)"
                    )

    def append(self, records: Sequence[Record], *, power_loss: bool = False, count: Mapping[str, int] | None = None) -> list[int]:
        """Commit records in one transaction and return their sequence numbers (see ``commit``)."""
        return self._commit(records, power_loss, count)[0]

    def commit(
        self, records: Sequence[Record], *, power_loss: bool = False, count: Mapping[str, int] | None = None
    ) -> list[Committed]:
        """Commit records in one transaction; returns them with their seqs and chain hashes.

        ``power_loss`` forces an fsync at commit whatever the kinds; ``count`` adds to the
        counters in the same transaction. On a full disk, committed low-priority records are
        evicted (and replaced by a ``records_dropped`` event) to make room and the batch is
        retried once; if there is still no room, ``BufferFull`` is raised and nothing of the
        batch is stored: the caller keeps it. Any other SQLite error is raised after rollback.
        """
        seqs, chains = self._commit(records, power_loss, count)
        out = [Committed(s, r, c) for s, r, c in zip(seqs, records, chains, strict=True)]
        return out + self.pop_side_commits()

    def pop_side_commits(self) -> list[Committed]:
        """Records the store committed on its own (records_dropped events) since the last call."""
        out, self._side = self._side, []
        return out

    def _commit(
        self, records: Sequence[Record], power_loss: bool, count: Mapping[str, int] | None
    ) -> tuple[list[int], list[str]]:
        self.check_attachments(records)
        if not records:
            return [], []
        if self.reserve.spent and any(r.kind in SHEDDABLE for r in records) and self.reserve.short():
            # the reserve was released for alarms: telemetry must not fill the room it gave them
            raise BufferFull(f"disk reserve in use by alarms; {len(records)} record(s) not stored")
        for attempt in (1, 2, 3):
            try:
                done = self._append_once(records, power_loss, count)
            except Exception as exc:
                self._rollback()
                if not is_full(exc):
                    raise
                if attempt == 1:
                    freed = self._make_room()
                    log.error("buffer: disk full (%s); evicted %d bytes of low-priority records, retrying", exc, freed)
                elif attempt == 3 or not _may_use_reserve(records) or not self.reserve.release():
                    # only alarms and small events use the reserve: the writer sheds the rest and retries
                    raise BufferFull(f"disk full ({exc}); {len(records)} record(s) not stored") from exc
                continue
            if not self.reserve.held and time.monotonic() - self._reserve_tried >= RESERVE_RETRY_S:
                self._reserve_tried = time.monotonic()
                self.reserve.ensure()  # the disk has room again: hold the reserve for the next time
            return done
        raise AssertionError("unreachable")

    def _append_once(
        self, records: Sequence[Record], power_loss: bool, count: Mapping[str, int] | None
    ) -> tuple[list[int], list[str]]:
        self._begin()
        seqs, chains = self._insert(records, power_loss)
        if self.processor is not None:  # derived records and state join this transaction
            self.processor.process([Committed(s, r, c) for s, r, c in zip(seqs, records, chains, strict=True)], self.clock())
        for name, n in (count or {}).items():
            self._count(name, n)
        if self.total_bytes > self.max_bytes:
            self._evict_to_cap()
        self._save_state()
        self.db.commit()
        self._settled()
        return seqs, chains

    def _save_state(self) -> None:
        self.db.execute(
            "UPDATE state SET last_seq = ?, chain_head = ?, total_bytes = ?", (self.last_seq, self.chain_head, self.total_bytes)
        )

    def _begin(self) -> None:
        """Remember the in-memory state, so a failed transaction can restore it."""
        self._snapshot = (self.last_seq, self.chain_head, self.total_bytes)
        self._side_mark = len(self._side)

    def _rollback(self) -> None:
        try:
            self.db.rollback()
        except sqlite3.Error:
            log.exception("buffer: rollback failed")
        self.last_seq, self.chain_head, self.total_bytes = self._snapshot
        del self._side[self._side_mark :]
        self._derived_power_loss = False
        if self.processor is not None:
            self.processor.after_rollback()

    def _insert(self, records: Sequence[Record], power_loss: bool = False) -> tuple[list[int], list[str]]:
        """Insert records inside the open transaction; in-memory state follows (see _rollback)."""
        now = self.clock()
        first = seq = self.last_seq
        head = self.chain_head
        rows: list[tuple[Any, ...]] = []
        att_rows: list[tuple[int, int, str, str, bytes]] = []
        chains: list[str] = []
        added = 0
        for rec in records:
            seq += 1
            body, head = self._document(seq, rec, head)
            size = len(body)
            if rec.attachments:
                size += sum(len(a.data) for a in rec.attachments)
                att_rows.extend((seq, i, a.name, a.content_type, a.data) for i, a in enumerate(rec.attachments))
            added += size
            rows.append((seq, _KIND_PRIO[rec.kind], rec.source, now, size, len(rec.attachments), body, rec.ts))
            chains.append(head)
        self.floor.ensure_above(seq)
        if not self.db.in_transaction:  # inside one (a drop note with its deletion) the level is set
            strongest = power_loss or any(self.durability[r.kind] == "power_loss" for r in records)
            if not strongest and self.max_unsynced_s and time.monotonic() - self._last_full >= self.max_unsynced_s:
                strongest = True  # periodic fsync: bounds the page-cache window a power cut can take
            if strongest:
                self._last_full = time.monotonic()
            self.set_sync(_SYNC["power_loss" if strongest else "process_crash"])
        db = self.db
        db.executemany(_INSERT, rows)
        if att_rows:
            db.executemany("INSERT INTO attachments VALUES (?, ?, ?, ?, ?)", att_rows)
        self.last_seq, self.chain_head = seq, head
        self.total_bytes += added
        return list(range(first + 1, seq + 1)), chains

    # ----------------------------------------------------------- lease/ack
    def lease(self, limit: int) -> list[StoredRecord]:
        """The oldest unleased records, highest priority first (alarm > event > telemetry > health).

        Within a kind, records leave in seq order, so each source's order on each topic is kept.
        """
        out: list[StoredRecord] = []
        for prio, kind in sorted(KIND_BY_PRIORITY.items()):
            if len(out) >= limit:
                break
            rows = self.db.execute(
                "SELECT seq, source, n_att, body, ts FROM records WHERE prio = ? AND seq > ? ORDER BY seq LIMIT ?",
                (prio, self._cursor[prio], limit - len(out)),
            ).fetchall()
            for seq, source, n_att, body, ts in rows:
                atts = self._attachments(seq) if n_att else ()
                out.append(StoredRecord(seq, source, kind, ts, bytes(body), atts))
            if rows:
                self._cursor[prio] = rows[-1][0]
        return out

    def _attachments(self, seq: int) -> tuple[Attachment, ...]:
        rows = self.db.execute("SELECT name, content_type, data FROM attachments WHERE seq = ? ORDER BY idx", (seq,))
        return tuple(Attachment(name, ctype, bytes(data)) for name, ctype, data in rows)

    def ack(self, seqs: Sequence[int]) -> int:
        """Delete delivered records (the broker acknowledged them). Unknown seqs are ignored."""
        removed = 0
        seqs = list(seqs)
        self.set_sync("NORMAL")  # a lost ack only means a duplicate later, never a loss
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            rows = self.db.execute(_ACK, (orjson.dumps(chunk),)).fetchall()
            self.total_bytes -= sum(r[0] for r in rows)
            att = [(r[2],) for r in rows if r[1]]
            if att:
                self.db.executemany("DELETE FROM attachments WHERE seq = ?", att)
            removed += len(rows)
        self._count("delivered", removed)
        self.db.execute("UPDATE state SET total_bytes = ?", (self.total_bytes,))
        self.db.commit()
        return removed

    def release_all(self) -> None:
        """Forget leases (the connection dropped): unacked records will be leased again."""
        self._cursor = {p: 0 for p in KIND_BY_PRIORITY}

    # ---------------------------------------------------------- inspection
    def stats(self) -> dict[str, Any]:
        depth = dict.fromkeys((k.value for k in Kind), 0)
        oldest: float | None = None
        for prio, n, first in self.db.execute("SELECT prio, COUNT(*), MIN(created) FROM records GROUP BY prio"):
            depth[KIND_BY_PRIORITY[prio].value] = n
            oldest = first if oldest is None else min(oldest, first)
        return {
            "depth": sum(depth.values()),
            "depth_by_kind": depth,
            "bytes": self.total_bytes,
            "max_bytes": self.max_bytes,
            "oldest_unsent_age_s": round(self.clock() - oldest, 3) if oldest is not None else 0.0,
            "last_seq": self.last_seq,
            "counters": self.counters(),
            "disk_reserve": {"held": self.reserve.held, "bytes": self.reserve.size, "released": self.reserve.released},
        }

    def peek(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM records ORDER BY prio, seq LIMIT ?", (limit,)).fetchall()
        return [orjson.loads(r[0]) for r in rows]

    def close(self, clean: bool = True) -> None:
        """Checkpoint and close; a clean close is remembered so the next start can tell."""
        try:
            self.db.commit()
            self.set_sync("FULL")
            self.db.execute("UPDATE state SET clean_shutdown = ?", (1 if clean else 0,))
            self.db.commit()
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # e.g. a full disk: what was committed is safe in the WAL
            log.error("buffer: closing: %s (the next start will report an unclean shutdown)", exc)
        finally:
            self.db.close()
