"""The producer-facing side of the buffer: a non-blocking, thread-safe emit()."""

from __future__ import annotations

from typing import Protocol

from buffer.record import Record


class RecordSink(Protocol):
    """Where producers put records. ``emit`` never blocks on disk or network."""

    def emit(self, record: Record) -> None: ...


class ListSink:
    """Collects records in memory: for offline replay and unit tests of producers."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def emit(self, record: Record) -> None:
        self.records.append(record)
