"""The buffer boundary: the one interface the rest of the agent talks to.

``BufferService`` owns the SQLite ``BufferStore`` (on one dedicated thread), the bounded
emit queue producers write to, the writer loop that commits queued records in batches, the
retry backlog and the TTL maintenance loop. Committed records are announced to subscribers
(the uplink's wake-up, the continuity tracker, later site rules). It stores canonical chained
documents; topics and message formats belong to the uplink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from buffer.backlog import Backlog
from buffer.chainkey import ChainKey, load_chain_key
from buffer.dropped import unassigned_record
from buffer.emitqueue import EmitQueue
from buffer.processor import CommitProcessor
from buffer.record import Committed, Kind, Record, StoredRecord
from buffer.store import BufferStore, is_full
from config.schema import Settings

__all__ = ["Buffer", "BufferService", "Committed", "Durability", "Opened", "StoredRecord"]

log = logging.getLogger("headframe.buffer")
T = TypeVar("T")

#: Records per transaction when the writer commits what producers emitted.
BATCH = 5000

#: Seconds between rules ticks (a commit with no inputs, for time-based rule decisions).
TICK_S = 1.0

#: An idle writer still proves the buffer thread alive this often (the watchdog allows 20 s).
HEARTBEAT_S = 1.0


class Durability(str, Enum):
    PROCESS_CRASH = "process_crash"
    POWER_LOSS = "power_loss"


class Buffer(Protocol):
    def emit(self, record: Record) -> None: ...
    async def append(self, records: Sequence[Record], *, durability: Durability | None = None) -> list[int]: ...
    async def lease(self, limit: int) -> list[StoredRecord]: ...
    async def ack(self, seqs: Sequence[int]) -> int: ...
    async def release_all(self) -> None: ...
    async def stats(self) -> dict[str, Any]: ...
    def subscribe(self, callback: Callable[[Sequence[Committed]], None]) -> Callable[[], None]: ...


@dataclass(frozen=True)
class Opened:
    """What the agent learns when the buffer opens (for its start-up record)."""

    previous_shutdown_clean: bool
    recovered_from: Path | None
    last_seq: int
    key_path: Path
    key_created: bool
    #: set when numbering resumed above the seq reservation after an unclean stop and a reboot:
    #: the last seq that survived (records after it were lost from the page cache or never issued)
    seq_resumed_from: int | None = None
    #: observation time of the last committed record, if it is still in the buffer
    last_record_ts: float | None = None
    #: the key in use; ``chain_key.emergency`` when the wanted key was unusable
    chain_key: ChainKey | None = None


def strip_oversize(records: Sequence[Record], cap: int) -> None:
    """Remove attachments above ``cap``; mark exactly the records that lost one."""
    for rec in records:
        if rec.attachments and any(len(a.data) > cap for a in rec.attachments):
            dropped = [a.name for a in rec.attachments if len(a.data) > cap]
            rec.attachments = tuple(a for a in rec.attachments if len(a.data) <= cap)
            rec.payload = {**rec.payload, "attachments_dropped": "too large"}
            log.error(
                "buffer: attachment(s) %s of %s above buffer.max_attachment_bytes (%d); storing the record without them",
                dropped,
                rec.source,
                cap,
            )


class BufferService:
    """All store access goes through one thread: SQLite likes one writer, the loop stays free."""

    def __init__(
        self,
        settings: Settings,
        clock_synced: Callable[[], bool | None] = lambda: None,
        *,
        queue_limit: int = 200_000,
        backlog_limit: int = 200_000,
    ) -> None:
        self.settings = settings
        self._queue = EmitQueue(clock_synced, queue_limit)
        self._clock_synced = clock_synced
        self._backlog = Backlog(backlog_limit)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer")
        self._store: BufferStore | None = None
        self._subscribers: list[Callable[[Sequence[Committed]], None]] = []
        self._processor: CommitProcessor | None = None
        self._last_tick = time.monotonic()
        self._last_reason = "writer_error"
        self._flush_lock = asyncio.Lock()
        #: set when an idle writer should look at the queue (first emit, stop)
        self._queued = asyncio.Event()
        #: Proof of life from the buffer thread itself: a hung disk shows as silence.
        self.heartbeat = time.monotonic()
        self.last_error: str | None = None
        self.appended = 0

    # ------------------------------------------------------------ lifecycle
    async def _call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kw))

    def _open(self) -> BufferStore:
        g, b = self.settings.gateway, self.settings.buffer
        self._key = load_chain_key(g.chain_key_file, b.path)
        key, self._key_path, self._key_created = self._key.key, self._key.path, self._key.created
        store = BufferStore(
            b.path,
            gateway=g.id,
            site=g.site,
            max_bytes=b.max_bytes,
            max_attachment_bytes=b.max_attachment_bytes,
            ttl={Kind(k): v for k, v in b.ttl.model_dump().items()},
            durability={Kind(k): v for k, v in b.durability.model_dump().items()},
            max_unsynced_s=b.max_unsynced,
            reserve_bytes=b.reserve,
            chain_key=key,
            processor=self._processor,
        )
        store.clock_synced = self._queue.synced
        return store

    def attach_rules(self, processor: CommitProcessor) -> None:
        """Run ``processor`` (``rules.engine.RulesEngine``) inside every commit, before ``open``.
        Its outputs reach subscribers with the batch they came from; ``run`` ticks it ~1/s."""
        if self._store is not None:
            raise RuntimeError("attach_rules() must be called before open()")
        self._processor = processor

    async def open(self) -> Opened:
        """Load the chain key (an emergency key if it is unusable; ChainKeyError only when not
        even that can be created) and open the store."""
        store = self._store = await self._call(self._open)
        if self._key_created:
            log.info("buffer: created a new chain key %s (mode 0600)", self._key_path)
        last_ts = await self._call(store.record_ts, store.seq_resumed_from or store.last_seq)
        return Opened(
            store.previous_shutdown_clean,
            store.recovered_from,
            store.last_seq,
            self._key_path,
            self._key_created,
            store.seq_resumed_from,
            last_ts,
            self._key,
        )

    async def close(self, clean: bool = True) -> None:
        if len(self._backlog):
            log.error(
                "buffer: stopping with %d record(s) that could not be committed (%s); they are lost",
                len(self._backlog),
                self.last_error,
            )
        if self._store is not None:
            await self._call(self._store.close, clean)
            self._store = None
        self._pool.shutdown(wait=True)

    @property
    def last_seq(self) -> int:
        return self._store.last_seq if self._store else 0

    @property
    def store(self) -> BufferStore:
        """The SQLite store, for tests and tools only: the agent talks to this service, and the
        store may only be used from the buffer thread while the writer runs."""
        if self._store is None:
            raise RuntimeError("buffer not open")
        return self._store

    # ------------------------------------------------------------ producers
    def emit(self, record: Record) -> None:
        """Thread-safe, never blocks: the writer commits it within ``buffer.flush_interval``."""
        self._queue.emit(record)

    def refresh_clock(self) -> None:
        self._queue.refresh_clock()
        if self._store is not None:
            self._store.clock_synced = self._queue.synced

    async def append(self, records: Sequence[Record], *, durability: Durability | None = None) -> list[int]:
        """Commit now (e.g. a mains-loss alarm) and return the seqs. If the commit fails the
        records join the retry backlog (nothing is lost) and the error is raised."""
        records = list(records)
        for rec in records:
            if rec.clock_synced is None:
                rec.clock_synced = bool(self._queue.synced)
        strip_oversize(records, self.settings.buffer.max_attachment_bytes)
        try:
            committed = await self._call(self.store.commit, records, power_loss=durability is Durability.POWER_LOSS)
        except Exception:
            self._backlog.extend(records)
            raise
        self._committed(committed)
        return [c.seq for c in committed]

    # -------------------------------------------------------------- uplink
    async def lease(self, limit: int) -> list[StoredRecord]:
        return await self._call(self.store.lease, limit)

    async def ack(self, seqs: Sequence[int]) -> int:
        return await self._call(self.store.ack, list(seqs))

    async def release_all(self) -> None:
        if self._store is not None:
            await self._call(self._store.release_all)

    async def stats(self) -> dict[str, Any]:
        stats = await self._call(self.store.stats)
        for name, n in self._backlog.counters().items():
            stats["counters"][name] = stats["counters"].get(name, 0) + n
        stats["writer"] = "error" if self.last_error else "ok"
        stats["last_error"] = self.last_error
        stats["queue_overflow"] = self._queue.overflow
        stats["uncommitted"] = len(self._backlog) + len(self._queue)
        return stats

    def subscribe(self, callback: Callable[[Sequence[Committed]], None]) -> Callable[[], None]:
        """``callback(committed)`` runs on the event loop after each commit; returns unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _committed(self, committed: Sequence[Committed]) -> None:
        if not committed:
            return
        self.appended += len(committed)
        for callback in list(self._subscribers):
            try:
                callback(committed)
            except Exception:
                log.exception("buffer: commit subscriber %r failed", callback)

    # -------------------------------------------------------------- writer
    def _take_queue(self) -> None:
        cap = self.settings.buffer.max_attachment_bytes
        while batch := self._queue.drain(BATCH):
            strip_oversize(batch, cap)
            self._backlog.extend(batch)
        if shed := self._queue.take_shed():  # the writer could not keep up with the producers
            self._backlog.lost_counts("writer_error", shed)
            log.error("buffer: emit queue full (buffer writer behind): %s record(s) refused", shed)
        if len(self._backlog) > self._backlog.limit:
            dropped = self._backlog.shed(self._last_reason, keep=self._backlog.limit)
            if dropped:
                log.error(
                    "buffer: %d uncommitted telemetry/health record(s) dropped: the retry backlog is full (%s)",
                    dropped,
                    self.last_error,
                )

    def _notes(self) -> tuple[list[Record], dict[str, int]]:
        """records_dropped events (and counters) for losses not reported yet."""
        now, synced = time.time(), self._queue.synced
        notes = [
            unassigned_record(reason, kinds, now, synced)
            for reason, kinds in self._backlog.unreported.items()
            if any(kinds.values())
        ]
        return notes, self._backlog.counters()

    async def flush(self) -> int:
        """Commit everything queued so far (and the retry backlog when its back-off has passed);
        returns how many records were committed. Serialised: the writer loop and a stopping
        agent may both call it."""
        async with self._flush_lock:
            return await self._flush()

    async def _flush(self) -> int:
        self._take_queue()
        total = 0
        while len(self._backlog) and self._backlog.ready():
            batch = self._backlog.head(BATCH)
            notes, counts = self._notes()
            try:
                committed = await self._call(self.store.commit, notes + batch, count=counts)
            except Exception as exc:
                if not self._failed(exc, batch):
                    break
                continue
            self._backlog.committed(len(batch))
            self._backlog.unreported.clear()
            self.last_error = None
            total += len(batch)
            self._committed(committed)
        if total:
            self.heartbeat = time.monotonic()  # the buffer thread just committed: it is alive
        elif time.monotonic() - self.heartbeat >= HEARTBEAT_S:
            self.heartbeat = await self._call(time.monotonic)  # nothing to commit: ask the thread itself
        return total

    def _failed(self, exc: Exception, batch: list[Record]) -> bool:
        """Handle a failed commit; True if the writer should try again at once."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        if is_full(exc):
            self._last_reason = "disk_full"
            shed = self._backlog.shed("disk_full")
            log.error(
                "buffer: disk full: %d telemetry/health record(s) dropped, %d alarm/event record(s) kept in memory and retried",
                shed,
                len(self._backlog),
            )
            if shed:
                return True
        elif not isinstance(exc, (sqlite3.Error, OSError)) and (bad := self._unstorable(batch)):
            # Not the disk: a record the store cannot take (a payload that is not JSON).
            # Count it and keep the others.
            self._backlog.remove(bad)
            self._backlog.lost("writer_error", bad)
            log.error(
                "buffer: %d record(s) with a payload that is not JSON were dropped (first from %s: %s)",
                len(bad),
                bad[0].source,
                exc,
            )
            return True
        else:
            self._last_reason = "writer_error"
        delay = self._backlog.failed()
        log.error(
            "buffer: commit failed (%s); %d record(s) kept in memory, retry in %.1f s", self.last_error, len(self._backlog), delay
        )
        return False

    @staticmethod
    def _unstorable(batch: list[Record]) -> list[Record]:
        bad = []
        for rec in batch:
            try:
                orjson.dumps(rec.payload, option=orjson.OPT_SORT_KEYS)
            except TypeError:
                bad.append(rec)
        return bad

    async def run(self, stop: asyncio.Event) -> None:
        """The writer and TTL maintenance loops, until ``stop`` is set."""
        await asyncio.gather(self._writer_loop(stop), self._maintenance_loop(stop))

    async def tick_rules(self) -> None:
        """A rules tick now: a commit with no inputs (time-based decisions), announced like any."""
        if self._processor is None or self._store is None:
            return
        async with self._flush_lock:
            self._last_tick = time.monotonic()
            self._committed(await self._call(self._store.tick))

    async def _writer_loop(self, stop: asyncio.Event) -> None:
        """Group records into transactions every ``flush_interval`` until asked to stop; tick
        the rules about once a second. With nothing queued and nothing to retry, sleep until a
        record is emitted (or ``HEARTBEAT_S``) instead of waking every ``flush_interval``."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _f: self._queued.set())

        def wake() -> None:  # from any producer thread
            with contextlib.suppress(RuntimeError):  # the loop closed under a late emit: the final flush takes it
                loop.call_soon_threadsafe(self._queued.set)

        self._queue.on_idle_emit = wake
        try:
            while not stop.is_set():
                try:
                    await self.flush()
                    if self._processor is not None and time.monotonic() - self._last_tick >= TICK_S:
                        await self.tick_rules()
                except Exception:  # never let the writer die; the next round tries again
                    log.exception("buffer: writer round failed")
                # the batching window: what producers emit meanwhile goes into one transaction
                await asyncio.wait((stopping,), timeout=self.settings.buffer.flush_interval)
                if not len(self._queue) and not len(self._backlog) and not stop.is_set():
                    await self._idle()
        finally:
            self._queue.on_idle_emit = None
            stopping.cancel()
        await self.flush()

    async def _idle(self) -> None:
        """Wait for the first record emitted, the next rules tick or heartbeat, or ``stop``."""
        wait = HEARTBEAT_S
        if self._processor is not None:
            wait = min(wait, max(0.0, self._last_tick + TICK_S - time.monotonic()))
        self._queued.clear()
        self._queue.idle = True  # from here an emit wakes us (EmitQueue checks after appending)
        try:
            if not len(self._queue):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queued.wait(), timeout=wait)
        finally:
            self._queue.idle = False

    async def _maintenance_loop(self, stop: asyncio.Event) -> None:
        """TTL expiry once a minute, only while the clock is synchronised (a clock that jumps
        from 1970 to today after boot must not expire everything at once)."""
        while not stop.is_set():
            if self._clock_synced() is not False and self._store is not None:
                try:
                    await self._call(self._store.expire)
                    # the store belongs to the buffer thread: collect its own commits there too
                    self._committed(await self._call(self._store.pop_side_commits))
                except Exception:
                    log.exception("buffer: TTL expiry failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=60)
