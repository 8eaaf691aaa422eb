"""The Record: the one contract between producers (drivers, vision, agent) and the buffer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Kind(str, Enum):
    """What a record is; decides priority, retention and MQTT topic."""

    ALARM = "alarm"
    EVENT = "event"
    TELEMETRY = "telemetry"
    HEALTH = "health"

    @property
    def priority(self) -> int:
        """Lower is more urgent: alarms leave first and are evicted last."""
        return _PRIORITY[self]


_PRIORITY = {Kind.ALARM: 0, Kind.EVENT: 1, Kind.TELEMETRY: 2, Kind.HEALTH: 3}
KIND_BY_PRIORITY = {v: k for k, v in _PRIORITY.items()}

#: Eviction order under the byte cap: cheapest to lose first.
EVICTION_ORDER = (Kind.HEALTH, Kind.TELEMETRY, Kind.EVENT, Kind.ALARM)


@dataclass(frozen=True)
class Attachment:
    """Binary evidence (e.g. a JPEG snapshot) stored and forwarded with its record."""

    name: str
    content_type: str
    data: bytes


@dataclass
class Record:
    """One observation handed to the buffer.

    ``ts`` is the observation time (UTC epoch seconds) taken by the producer at the moment
    the value was seen (e.g. when the Modbus response arrived), not when it was buffered.
    ``clock_synced`` is stamped by the agent's sink if the producer leaves it as None.
    """

    source: str
    kind: Kind
    payload: dict[str, Any]
    ts: float = field(default_factory=time.time)
    clock_synced: bool | None = None
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            self.kind = Kind(self.kind)
        if not self.source or "/" in self.source or "+" in self.source or "#" in self.source:
            raise ValueError(f"record source {self.source!r} must be non-empty and free of '/', '+', '#'")


@dataclass(frozen=True)
class StoredRecord:
    """A record as leased from the buffer: its seq and the canonical chained document.

    ``doc`` is the JSON document that was hashed into the chain (attachments as metadata
    only); ``attachments`` carries the binary evidence for formatters that send it. The
    buffer knows no topics: turning this into a message is the uplink's job.
    """

    seq: int
    source: str
    kind: Kind
    ts: float
    doc: bytes
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Committed:
    """One record as committed, handed to commit subscribers (uplink wake-up, rules)."""

    seq: int
    record: Record
    chain: str
