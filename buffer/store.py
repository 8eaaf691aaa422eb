"""SQLite (WAL) store-and-forward queue: append, lease/ack, byte cap, TTL, integrity chain.

Not thread-safe by design: the agent gives it one thread of its own. Every public method is
one short transaction, so a ``kill -9`` at any instant leaves a consistent database.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from buffer import chain
from buffer.record import EVICTION_ORDER, KIND_BY_PRIORITY, Kind, Record, StoredRecord
from buffer.recovery import open_or_recover
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
    body BLOB NOT NULL
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
_SYNC = {"process_crash": "NORMAL", "power_loss": "FULL"}


_KIND_VALUE = {k: k.value for k in Kind}  # Enum attribute access is slow on the hot path
_KIND_PRIO = {k: k.priority for k in Kind}


def current_boot_id() -> str:
    """The kernel's id of this boot ("" if unknown): the page cache lives exactly that long."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class AttachmentTooLarge(ValueError):
    """An attachment above the configured cap; the producer should shrink it (JPEG quality)."""


class BufferStore:
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
    ) -> None:
        self.path = Path(path)
        self.gateway, self.site = gateway, site
        self.max_bytes, self.max_attachment_bytes = max_bytes, max_attachment_bytes
        self.ttl = ttl or {}
        self.durability = {k: "process_crash" for k in Kind} | {Kind.ALARM: "power_loss"} | (durability or {})
        self.chain_key = chain_key
        self.clock = clock
        self.boot_id = current_boot_id() if boot_id is None else boot_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_from: Path | None = None
        self.db, self.recovered_from = open_or_recover(self.path, SCHEMA)
        self.floor = SeqFloor(self.path.with_name(self.path.name + ".seq"))
        self._load_state()
        self._cursor = {p: 0 for p in KIND_BY_PRIORITY}
        self._sync = ""
        self._iso_sec, self._iso_prefix = -1, ""
        self._last_evict_log, self._evicted_since_log = -1e9, 0

    # ----------------------------------------------------------------- state
    def _load_state(self) -> None:
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
                log.warning("buffer: unclean stop before a reboot; seqs after %d may have been issued and lost, "
                            "numbering resumes at %d", self.last_seq, floor + 1)
                self.seq_resumed_from, self.last_seq = self.last_seq, floor
        self.db.execute("INSERT OR REPLACE INTO boot VALUES (1, ?)", (self.boot_id,))
        self.total_bytes = int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()[0])
        self.db.execute("UPDATE state SET clean_shutdown = 0, total_bytes = ?, last_seq = ?", (self.total_bytes, self.last_seq))
        self.db.commit()
        self.floor.ensure_above(self.last_seq)

    def counters(self) -> dict[str, int]:
        return {name: int(v) for name, v in self.db.execute("SELECT name, value FROM counters")}

    def _count(self, name: str, n: int) -> None:
        if n:
            self.db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )

    def _set_sync(self, level: str) -> None:
        if level != self._sync:
            self.db.execute(f"PRAGMA synchronous = {level}")
            self._sync = level

    # ---------------------------------------------------------------- append
    def _message(self, seq: int, rec: Record, prev: str) -> tuple[bytes, str]:
        """The message body (JSON bytes) and its chain hash; hot path, so built once.

        The body is the canonical form (sorted keys) with ``chain`` appended at the end, so
        the hashed bytes are serialised only once.
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
                {"name": a.name, "content_type": a.content_type, "size": len(a.data),
                 "sha256": hashlib.sha256(a.data).hexdigest()}
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

    def append(self, records: Sequence[Record]) -> list[int]:
        """Commit records in one transaction and return their sequence numbers.

        On a full disk, lower-priority records are evicted to make room; if that is not
        enough, the records that cannot be stored are dropped and counted (never a crash).
        """
        for rec in records:
            for att in rec.attachments:
                if len(att.data) > self.max_attachment_bytes:
                    raise AttachmentTooLarge(
                        f"attachment {att.name!r} of {rec.source} is {len(att.data)} bytes; "
                        f"the cap is {self.max_attachment_bytes} (buffer.max_attachment_bytes)"
                    )
        pending = list(records)
        for attempt in range(3):
            try:
                return self._append_once(pending)
            except sqlite3.OperationalError as exc:
                self.db.rollback()
                if "full" not in str(exc).lower():
                    raise
                freed = self._evict_bytes(max(self.total_bytes // 10, 64 * 1024), protect_alarms=True)
                log.error("buffer: disk full (%s); evicted %d bytes of low-priority records, retry %d",
                          exc, freed, attempt + 1)
                if attempt == 1:
                    dropped = [r for r in pending if r.kind is not Kind.ALARM]
                    for rec in dropped:
                        self._count(f"dropped_disk_full_{rec.kind.value}", 1)
                    pending = [r for r in pending if r.kind is Kind.ALARM]
                    self.db.commit()
                    if not pending:
                        return []
        for rec in pending:
            self._count(f"dropped_disk_full_{rec.kind.value}", 1)
        self.db.commit()
        log.error("buffer: disk full; %d alarm record(s) could not be stored", len(pending))
        return []

    def _append_once(self, records: Sequence[Record]) -> list[int]:
        if not records:
            return []
        now = self.clock()
        seq, head = self.last_seq, self.chain_head
        rows, att_rows, seqs = [], [], []
        added = 0
        for rec in records:
            seq += 1
            body, head = self._message(seq, rec, head)
            size = len(body)
            if rec.attachments:
                size += sum(len(a.data) for a in rec.attachments)
                att_rows.extend((seq, i, a.name, a.content_type, a.data) for i, a in enumerate(rec.attachments))
            added += size
            rows.append((seq, _KIND_PRIO[rec.kind], rec.source, now, size, len(rec.attachments), body))
            seqs.append(seq)
        self.floor.ensure_above(seq)
        strongest = "power_loss" if any(self.durability[r.kind] == "power_loss" for r in records) else "process_crash"
        self._set_sync(_SYNC[strongest])
        db = self.db
        db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if att_rows:
            db.executemany("INSERT INTO attachments VALUES (?, ?, ?, ?, ?)", att_rows)
        db.execute("UPDATE state SET last_seq = ?, chain_head = ?, total_bytes = ?", (seq, head, self.total_bytes + added))
        db.commit()
        self.last_seq, self.chain_head = seq, head
        self.total_bytes += added
        if self.total_bytes > self.max_bytes:
            self._evict_bytes(self.total_bytes - self.max_bytes, protect_alarms=False)
            db.commit()
        return seqs

    # --------------------------------------------------------------- evict
    def _evict_bytes(self, need: int, *, protect_alarms: bool) -> int:
        """Delete oldest records, cheapest kind first, until ``need`` bytes are freed."""
        freed = 0
        for kind in EVICTION_ORDER:
            if protect_alarms and kind is Kind.ALARM:
                break
            while freed < need:
                rows = self.db.execute(
                    "SELECT seq, size, n_att FROM records WHERE prio = ? ORDER BY seq LIMIT 1000", (kind.priority,)
                ).fetchall()
                if not rows:
                    break
                victims: list[tuple[int]] = []
                with_att: list[tuple[int]] = []
                for seq, size, n_att in rows:
                    if freed >= need:
                        break
                    victims.append((seq,))
                    freed += size
                    if n_att:
                        with_att.append((seq,))
                self._delete(victims, with_att)
                self._count(f"dropped_cap_{kind.value}", len(victims))
            if freed >= need:
                break
        self.total_bytes -= freed
        self.db.execute("UPDATE state SET total_bytes = ?", (self.total_bytes,))
        self._evicted_since_log += freed
        if freed and time.monotonic() - self._last_evict_log > 60:
            log.warning("buffer: byte cap %d reached; evicted %d bytes of the oldest low-priority records "
                        "in the last minute (see counters dropped_cap_*)", self.max_bytes, self._evicted_since_log)
            self._last_evict_log, self._evicted_since_log = time.monotonic(), 0
        return freed

    def _delete(self, seqs: list[tuple[int]], with_att: list[tuple[int]]) -> None:
        self.db.executemany("DELETE FROM records WHERE seq = ?", seqs)
        if with_att:
            self.db.executemany("DELETE FROM attachments WHERE seq = ?", with_att)

    def expire(self) -> dict[str, int]:
        """Delete records older than their kind's TTL; returns the counts per kind."""
        now = self.clock()
        expired: dict[str, int] = {}
        for kind, ttl in self.ttl.items():
            if not ttl:
                continue
            rows = self.db.execute(
                "SELECT seq, size, n_att FROM records WHERE prio = ? AND created < ?", (kind.priority, now - ttl)
            ).fetchall()
            if rows:
                self._delete([(r[0],) for r in rows], [(r[0],) for r in rows if r[2]])
                self.total_bytes -= sum(r[1] for r in rows)
                self._count(f"expired_{kind.value}", len(rows))
                expired[kind.value] = len(rows)
        if expired:
            self.db.execute("UPDATE state SET total_bytes = ?", (self.total_bytes,))
            self.db.commit()
            log.warning("buffer: TTL expired unsent records: %s", expired)
        return expired

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
                "SELECT seq, source, n_att, body FROM records WHERE prio = ? AND seq > ? ORDER BY seq LIMIT ?",
                (prio, self._cursor[prio], limit - len(out)),
            ).fetchall()
            for seq, source, n_att, body in rows:
                if n_att:
                    body = self._with_attachments(seq, body)
                out.append(StoredRecord(seq, source, kind, bytes(body)))
            if rows:
                self._cursor[prio] = rows[-1][0]
        return out

    def _with_attachments(self, seq: int, body: bytes) -> bytes:
        doc = orjson.loads(body)
        data = self.db.execute("SELECT data FROM attachments WHERE seq = ? ORDER BY idx", (seq,)).fetchall()
        for meta, (blob,) in zip(doc.get("attachments", []), data, strict=False):
            meta["data"] = base64.b64encode(blob).decode()
        return orjson.dumps(doc)

    def ack(self, seqs: Sequence[int]) -> int:
        """Delete delivered records (the broker acknowledged them). Unknown seqs are ignored."""
        removed = 0
        seqs = list(seqs)
        self._set_sync("NORMAL")  # a lost ack only means a duplicate later, never a loss
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"DELETE FROM records WHERE seq IN ({marks}) RETURNING size, n_att, seq", chunk).fetchall()
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
        }

    def peek(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM records ORDER BY prio, seq LIMIT ?", (limit,)).fetchall()
        return [orjson.loads(r[0]) for r in rows]

    def close(self, clean: bool = True) -> None:
        """Checkpoint and close; a clean close is remembered so the next start can tell."""
        try:
            self.db.commit()
            self._set_sync("FULL")
            self.db.execute("UPDATE state SET clean_shutdown = ?", (1 if clean else 0,))
            self.db.commit()
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()
