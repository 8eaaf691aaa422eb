"""Eviction and expiry for ``BufferStore``: what is removed is named in a chained event.

Byte cap, disk full and TTL delete the oldest records of the cheapest kinds; in the same
transaction a ``records_dropped`` event names the removed seq ranges (``buffer.dropped``).
Split from ``store.py`` to keep each file to one job; only ``BufferStore`` uses it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from buffer.dropped import dropped_records, seq_ranges
from buffer.record import EVICTION_ORDER, Committed, Kind, Record

_LINKS = "SELECT seq, body FROM records WHERE seq IN (SELECT value FROM json_each(?))"

log = logging.getLogger("headframe.buffer")

#: Counter prefix per drop reason (the names health has always reported).
_CAP_COUNTER = {"byte_cap": "dropped_cap_", "disk_full": "dropped_disk_full_", "ttl": "expired_"}


class Eviction:
    """Mixin: needs the store's db, counters, in-memory state and ``_insert``."""

    db: sqlite3.Connection
    total_bytes: int
    max_bytes: int
    last_seq: int
    chain_head: str
    ttl: dict[Kind, float]
    clock: Callable[[], float]
    clock_synced: bool | None
    _side: list[Committed]
    _last_evict_log: float
    _evicted_since_log: int

    if TYPE_CHECKING:

        def _insert(self, records: list[Record], power_loss: bool = False) -> tuple[list[int], list[str]]: ...
        def _count(self, name: str, n: int) -> None: ...
        def _begin(self) -> None: ...
        def _rollback(self) -> None: ...
        def _save_state(self) -> None: ...
        def set_sync(self, level: str) -> None: ...

    # --------------------------------------------------------------- evict
    def _evict_to_cap(self) -> None:
        """Inside the open transaction: evict until the byte cap holds, drop records included."""
        for _ in range(10):
            if self.total_bytes <= self.max_bytes:
                return
            # room for the records_dropped event itself, so one pass usually suffices
            self._evict_bytes(self.total_bytes - self.max_bytes + 4096, protect_alarms=False, reason="byte_cap")

    def _make_room(self) -> int:
        """Disk full: free space without touching alarms. Never raises: each step is optional."""
        freed = 0
        self._checkpoint()  # a WAL that cannot grow blocks even a DELETE; truncating it frees space
        try:
            self.set_sync("FULL")
            self._begin()
            freed = self._evict_bytes(max(self.total_bytes // 10, 64 * 1024), protect_alarms=True, reason="disk_full")
            self._save_state()
            self.db.commit()
        except Exception as exc:
            self._rollback()
            log.error("buffer: disk full and eviction failed too (%s); the writer keeps the records in memory", exc)
            return 0
        self._checkpoint()
        return freed

    def _checkpoint(self) -> None:
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("buffer: WAL checkpoint failed (%s)", exc)

    def _evict_bytes(self, need: int, *, protect_alarms: bool, reason: str) -> int:
        """Delete oldest records, cheapest kind first, until ``need`` bytes are freed; the
        deleted ones are named in ``records_dropped`` events inserted in the same transaction."""
        freed = 0
        victims: dict[int, Kind] = {}
        with_att: list[tuple[int]] = []
        for kind in EVICTION_ORDER:
            if freed >= need or (protect_alarms and kind is Kind.ALARM):
                break
            after = 0
            while freed < need:
                rows = self.db.execute(
                    "SELECT seq, size, n_att FROM records WHERE prio = ? AND seq > ? ORDER BY seq LIMIT 1000",
                    (kind.priority, after),
                ).fetchall()
                if not rows:
                    break
                for seq, size, n_att in rows:
                    if freed >= need:
                        break
                    victims[seq] = kind
                    freed += size
                    if n_att:
                        with_att.append((seq,))
                after = rows[-1][0]
        if victims:
            self._drop(victims, with_att, reason, _CAP_COUNTER[reason])
            self.total_bytes -= freed
        self._evicted_since_log += freed
        if freed and time.monotonic() - self._last_evict_log > 60:
            log.warning(
                "buffer: %s; evicted %d bytes of the oldest low-priority records in the last minute "
                "(see counters dropped_*, and records_dropped events)",
                reason,
                self._evicted_since_log,
            )
            self._last_evict_log, self._evicted_since_log = time.monotonic(), 0
        return freed

    def _drop(self, victims: dict[int, Kind], with_att: list[tuple[int]], reason: str, counter: str) -> None:
        """Delete ``victims`` and insert the records_dropped event(s) naming them."""
        ranges = seq_ranges(list(victims))
        links = self._links({s for r in ranges for s in r})
        keys = [(s,) for s in victims]
        self.db.executemany("DELETE FROM records WHERE seq = ?", keys)
        if with_att:
            self.db.executemany("DELETE FROM attachments WHERE seq = ?", with_att)
        per_kind: dict[str, int] = {}
        for kind in victims.values():
            per_kind[kind.value] = per_kind.get(kind.value, 0) + 1
        for kind_name, n in per_kind.items():
            self._count(f"{counter}{kind_name}", n)
        notes = dropped_records(reason, victims, links, self.clock(), self.clock_synced)
        seqs, chains = self._insert(notes)
        self._side.extend(Committed(s, r, c) for s, r, c in zip(seqs, notes, chains, strict=True))

    def _links(self, seqs: set[int]) -> dict[int, tuple[str, str]]:
        """(prev, chain) of the given records, read from their stored documents."""
        out: dict[int, tuple[str, str]] = {}
        ordered = sorted(seqs)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            # one statement for any chunk size (see buffer.store.SEQS_JSON)
            for seq, body in self.db.execute(_LINKS, (orjson.dumps(chunk),)):
                doc = orjson.loads(body)
                out[seq] = (doc["prev"], doc["chain"])
        return out

    def expire(self) -> dict[str, int]:
        """Delete records older than their kind's TTL, replaced by a records_dropped event in
        the same transaction; returns the counts per kind."""
        now = self.clock()
        expired: dict[str, int] = {}
        victims: dict[int, Kind] = {}
        with_att: list[tuple[int]] = []
        freed = 0
        for kind, ttl in self.ttl.items():
            if not ttl:
                continue
            rows = self.db.execute(
                "SELECT seq, size, n_att FROM records WHERE prio = ? AND created < ?", (kind.priority, now - ttl)
            ).fetchall()
            if rows:
                victims.update((r[0], kind) for r in rows)
                with_att.extend((r[0],) for r in rows if r[2])
                freed += sum(r[1] for r in rows)
                expired[kind.value] = len(rows)
        if not victims:
            return expired
        self.set_sync("FULL")
        self._begin()
        try:
            self._drop(victims, with_att, "ttl", "expired_")
            self.total_bytes -= freed
            self._save_state()
            self.db.commit()
        except Exception:
            self._rollback()
            raise
        log.warning("buffer: TTL expired unsent records: %s", expired)
        return expired
