"""The contract every site rule implements (see docs/rules.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from buffer.record import Committed, Record


class Rule(Protocol):
    """A deterministic state machine over committed records.

    ``apply`` and ``tick`` are pure: no I/O and no clock reads other than ``now``; the engine
    runs them on the buffer thread inside the transaction that commits their inputs, and saves
    ``snapshot()`` in that same transaction, so a crash or a power cut can neither lose nor
    double what a rule has counted. Output records are committed in that transaction too.
    """

    name: str

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]: ...

    def tick(self, now: float) -> list[Record]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, snapshot: dict[str, Any]) -> None: ...
