"""The contract between the protocol-agnostic poller and one driver per protocol.

The poller (``drivers/device.py``) plans, retries, backs off, ages values and reports on
change; a driver only knows how to talk to its device. Adding a protocol (OPC UA, S7) is a
settings model in ``config/drivers.py``, a class implementing ``Driver`` and one line in
``drivers/registry.py`` (see docs/drivers.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from config.drivers import PointSettings
from drivers.planner import Barrier, Block

#: a decoded engineering value
Value = float | int | bool | str


@dataclass(frozen=True, slots=True)
class BadValue:
    """A point whose answer arrived but cannot be a value (NaN, wrong count): quality bad."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reading:
    """A value with what the device said about it (OPC UA status and source time).

    ``uncertain`` keeps the value and says why (a sensor out of range, a substituted value);
    ``source_ts`` is the device's own time of the value (epoch s), reported beside ours.
    """

    value: Value
    quality: Literal["good", "uncertain"] = "good"
    reason: str | None = None
    source_ts: float | None = None


#: what one read returns: point name → value, or why that one point is bad
Values = dict[str, Value | Reading | BadValue]
#: how a pushing driver hands values to the poller: (values, arrival time)
Push = Callable[[Values, float], None]


class Driver(Protocol):
    """One device behind one protocol. Errors are ``drivers.errors.DriverError`` subclasses."""

    async def connect(self) -> None:
        """Open what the device needs (connection, serial port); raises DriverError."""
        ...

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        """The requests that read ``points`` (one poll group), avoiding learned ``barriers``."""
        ...

    async def read(self, block: Block) -> Values:
        """Read one planned block; raises DriverError when the block produced nothing."""
        ...

    async def close(self) -> None:
        """Release the connection (a shared serial bus stays open for its other devices)."""
        ...


@runtime_checkable
class PushingDriver(Driver, Protocol):
    """A driver whose device also pushes values (OPC UA data-change subscriptions).

    The poller gives it ``push`` once; pushed values take the same quality and report path
    as read ones, at once instead of at the next poll. ``read`` still runs each interval
    (it checks the session and keeps values fresh), so ageing and back-off are unchanged.
    """

    def set_push(self, push: Push) -> None: ...
