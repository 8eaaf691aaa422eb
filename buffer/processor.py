"""The hook that lets derived records commit with their inputs (the site rules engine uses it).

``buffer`` imports nothing of ``rules``: the store only knows this protocol. The processor
runs on the buffer thread, inside the transaction that commits a batch, so what it derives
(records and its own saved state) commits or rolls back together with that batch.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from buffer.record import Committed, Kind, Record

log = logging.getLogger("headframe.buffer")

#: Inserts derived records in the open transaction and returns them committed (seq, chain).
Insert = Callable[[Sequence[Record]], list[Committed]]


class CommitProcessor(Protocol):
    """Called by ``BufferStore``; implemented by ``rules.engine.RulesEngine``.

    ``open`` once when the store opens (create its tables, restore state, keep ``insert``);
    ``process`` after a batch's rows are inserted and before the SQLite commit; ``tick`` in a
    transaction of its own; ``after_commit`` / ``after_rollback`` tell it the transaction's fate
    so its in-memory state follows the database (a rolled-back batch is applied again on retry).
    """

    def open(self, db: sqlite3.Connection, insert: Insert) -> None: ...

    def process(self, batch: Sequence[Committed], now: float) -> list[Record]: ...

    def tick(self, now: float) -> list[Record]: ...

    def after_commit(self) -> None: ...

    def after_rollback(self) -> None: ...


class Processing:
    """Mixin of ``BufferStore``: the processor's transaction of its own (tick), its insert, and
    settling after a commit. Split from ``store.py`` to keep each file to one job."""

    db: sqlite3.Connection
    path: Path
    processor: CommitProcessor | None
    durability: dict[Kind, str]
    total_bytes: int
    max_bytes: int
    _side: list[Committed]
    _sync: str
    _last_full: float
    _derived_power_loss: bool
    clock: Callable[[], float]

    if TYPE_CHECKING:

        def _insert(self, records: Sequence[Record], power_loss: bool = False) -> tuple[list[int], list[str]]: ...
        def _begin(self) -> None: ...
        def _rollback(self) -> None: ...
        def _save_state(self) -> None: ...
        def _evict_to_cap(self) -> None: ...
        def set_sync(self, level: str) -> None: ...
        def check_attachments(self, records: Sequence[Record]) -> None: ...
        def pop_side_commits(self) -> list[Committed]: ...

    def tick(self) -> list[Committed]:
        """The processor's time-based step as a commit of its own (no inputs); returns every
        record committed since the last ``pop_side_commits`` (its outputs included)."""
        if self.processor is None:
            return self.pop_side_commits()
        self._begin()
        try:
            self.processor.tick(self.clock())
            if self.db.in_transaction:  # nothing derived, nothing changed: no commit at all
                if self.total_bytes > self.max_bytes:
                    self._evict_to_cap()
                self._save_state()
                self.db.commit()
        except Exception:
            self._rollback()
            raise
        self._settled()
        return self.pop_side_commits()

    def _insert_derived(self, records: Sequence[Record]) -> list[Committed]:
        """The processor's insert: derived records join the open transaction and the side commits
        (subscribers receive them with the batch). Raises ValueError/TypeError before writing
        anything for a record the store cannot take (attachment too large, payload not JSON)."""
        self.check_attachments(records)
        seqs, chains = self._insert(records)
        out = [Committed(s, r, c) for s, r, c in zip(seqs, records, chains, strict=True)]
        self._side.extend(out)
        if any(self.durability[r.kind] == "power_loss" for r in records):
            self._derived_power_loss = True
        return out

    def _settled(self) -> None:
        """After a commit: the processor keeps its new state; a derived record of ``power_loss``
        durability (an alarm raised from telemetry) committed at NORMAL is made durable now by
        fsyncing the WAL, which is what FULL does at a commit (SQLite refuses to change the level
        inside a transaction, and a FULL commit that changes no byte writes and fsyncs nothing).
        Never raises: the batch is committed."""
        if self.processor is None:
            return
        self.processor.after_commit()
        if self._derived_power_loss and self._sync != "FULL":
            try:
                fd = os.open(str(self.path) + "-wal", os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._last_full = time.monotonic()
            except OSError as exc:
                log.error(
                    "buffer: fsync after a derived alarm failed (%s); it is committed, and durable at the next FULL commit", exc
                )
        self._derived_power_loss = False
