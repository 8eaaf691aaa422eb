"""Runs the BufferStore on one dedicated thread and the writer loop on the asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.sink import QueueSink
from buffer.record import Kind, Record
from buffer.store import AttachmentTooLarge, BufferStore
from config.schema import Settings

log = logging.getLogger("headframe.buffer")
T = TypeVar("T")


def open_store(settings: Settings) -> BufferStore:
    b = settings.buffer
    key = settings.gateway.chain_key_file.read_bytes().strip() if settings.gateway.chain_key_file else None
    return BufferStore(
        b.path, gateway=settings.gateway.id, site=settings.gateway.site, max_bytes=b.max_bytes,
        max_attachment_bytes=b.max_attachment_bytes,
        ttl={Kind(k): v for k, v in b.ttl.model_dump().items()},
        durability={Kind(k): v for k, v in b.durability.model_dump().items()},
        chain_key=key,
    )


# TEMPORARY (branch continuity): a record-level commit subscription until the lead merges the
# buffer boundary; ``buffer.boundary.Committed`` and ``Buffer.subscribe`` replace both below.
# ``chain`` is left empty here: BufferStore.append does not return the chain hashes.
@dataclass(frozen=True)
class Committed:
    seq: int
    record: Record
    chain: str = ""


class BufferService:
    """All store access goes through one thread: SQLite likes one writer, the loop stays free."""

    def __init__(self, settings: Settings, sink: QueueSink) -> None:
        self.settings = settings
        self.sink = sink
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer")
        self.store: BufferStore | None = None
        self.heartbeat = time.monotonic()
        self.last_error: str | None = None
        self.on_commit: Callable[[], None] | None = None
        self.appended = 0
        self._subscribers: list[Callable[[Sequence[Committed]], None]] = []  # TEMPORARY, see Committed

    def subscribe(self, callback: Callable[[Sequence[Committed]], None]) -> Callable[[], None]:
        """TEMPORARY shim of ``Buffer.subscribe``: ``callback`` gets each committed batch on the loop."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def open(self) -> BufferStore:
        self.store = await self.call(open_store, self.settings)
        return self.store

    def _append(self, records: list) -> list[Committed]:  # runs on the buffer thread
        assert self.store is not None
        try:
            seqs = self.store.append(records)
        except AttachmentTooLarge as exc:
            log.error("buffer: %s; storing the record without attachments", exc)
            for rec in records:
                rec.attachments = tuple(a for a in rec.attachments if len(a.data) <= self.store.max_attachment_bytes)
                if not rec.attachments:
                    rec.payload = {**rec.payload, "attachments_dropped": "too large"}
            seqs = self.store.append(records)
        if len(seqs) != len(records):  # disk full: only the alarms were kept (BufferStore.append)
            records = [r for r in records if r.kind is Kind.ALARM]
        return [Committed(seq, rec) for seq, rec in zip(seqs, records, strict=False)]

    async def flush(self) -> int:
        """Commit everything queued so far; returns how many records were committed."""
        total = 0
        while True:
            batch = self.sink.drain(5000)
            if not batch:
                break
            try:
                committed = await self.call(self._append, batch)
                total += len(committed)
                self.last_error = None
            except Exception as exc:  # keep the writer alive; the error goes to health and the log
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("buffer: append failed; %d record(s) lost", len(batch))
                continue
            for callback in list(self._subscribers):
                try:
                    callback(committed)
                except Exception:  # a subscriber's bug must not stop the writer
                    log.exception("buffer: commit subscriber failed")
        # Proof of life must come from the buffer thread itself: a hung disk shows as silence.
        self.heartbeat = await self.call(time.monotonic)
        if total:
            self.appended += total
            if self.on_commit:
                self.on_commit()
        return total

    async def writer_loop(self, stop: asyncio.Event) -> None:
        """Group records into transactions every ``flush_interval`` until asked to stop."""
        interval = self.settings.buffer.flush_interval
        while not stop.is_set():
            await self.flush()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
        await self.flush()

    async def maintenance_loop(self, stop: asyncio.Event, clock_synced: Callable[[], bool | None]) -> None:
        """TTL expiry once a minute, only while the clock is synchronised (a clock that jumps
        from 1970 to today after boot must not expire everything at once)."""
        while not stop.is_set():
            if clock_synced() is not False and self.store is not None:
                try:
                    await self.call(self.store.expire)
                except Exception:
                    log.exception("buffer: TTL expiry failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=60)
            except TimeoutError:
                pass

    async def close(self, clean: bool = True) -> None:
        if self.store is not None:
            await self.call(self.store.close, clean)
            self.store = None
        self._pool.shutdown(wait=True)

    @property
    def path(self) -> Path:
        return self.settings.buffer.path
