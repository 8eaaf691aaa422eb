"""REMOVED AT MERGE. A stand-in for ``buffer.boundary.BufferService`` over today's
``agent/bufferservice.py``, so the uplink can be built and tested against the ``Buffer``
protocol (SPEC.md) before the buffer helper's boundary exists. Nothing but this file, one
line in agent/daemon.py and bench/spine_bench.py knows it exists.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson

from agent.bufferservice import BufferService
from buffer.record import Attachment, Record
from buffer.record import StoredRecord as LegacyStored


class LegacyStoredRecord:
    """The SPEC's ``StoredRecord`` shape (doc without attachment bytes + attachments)."""

    def __init__(self, old: LegacyStored) -> None:
        self.seq, self.source, self.kind = old.seq, old.source, old.kind
        if b'"attachments":' in old.body:
            # the legacy store embeds the bytes; split them back out into Attachment objects
            doc = orjson.loads(old.body)
            atts = []
            for meta in doc.get("attachments", []):
                data = base64.b64decode(meta.pop("data", ""))
                atts.append(Attachment(meta["name"], meta["content_type"], data))
            self.doc: bytes = orjson.dumps(doc)
            self.attachments: tuple[Attachment, ...] = tuple(atts)
        else:
            self.doc, self.attachments = old.body, ()

    @cached_property
    def ts(self) -> float:
        return datetime.fromisoformat(orjson.loads(self.doc)["ts"]).timestamp()


class LegacyBuffer:
    """Buffer protocol over BufferService; subscribers get no records (the old store does not say which)."""

    def __init__(self, service: BufferService) -> None:
        self.service = service
        self._subscribers: list[Callable[[Sequence[Any]], None]] = []
        service.on_commit = self._committed

    def _committed(self) -> None:
        for callback in list(self._subscribers):
            callback(())

    def emit(self, record: Record) -> None:
        self.service.sink.emit(record)

    async def append(self, records: Sequence[Record], *, durability: Any = None) -> list[int]:
        assert self.service.store is not None
        return await self.service.call(self.service.store.append, list(records))

    async def lease(self, limit: int) -> list[LegacyStoredRecord]:
        assert self.service.store is not None
        return [LegacyStoredRecord(r) for r in await self.service.call(self.service.store.lease, limit)]

    async def ack(self, seqs: Sequence[int]) -> int:
        assert self.service.store is not None
        return await self.service.call(self.service.store.ack, seqs)

    async def release_all(self) -> None:
        if self.service.store is not None:
            await self.service.call(self.service.store.release_all)

    async def stats(self) -> dict[str, Any]:
        assert self.service.store is not None
        return await self.service.call(self.service.store.stats)

    def subscribe(self, callback: Callable[[Sequence[Any]], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None


__all__ = ["LegacyBuffer", "LegacyStoredRecord"]
