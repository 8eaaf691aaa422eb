"""Why a request produced no values, as exception types (never classified by message text).

Every error carries ``reason``: short, in a technician's words, saying what to check. The
type says what the poller does with it: a ``silent`` device (timeout, unreachable, port
gone) ends the cycle instead of costing one timeout per block; an ``IllegalAddress`` block
is split; everything else marks that block's points bad and the cycle goes on.
"""

from __future__ import annotations

from typing import ClassVar

#: the words for bytes that came back but were no answer
BAD_FRAME = (
    "bad frame: answer did not parse — check for two masters on the bus, baud rate/parity, or a device speaking another protocol"
)


class DriverError(Exception):
    """A request that did not produce values."""

    #: nothing is coming back from the device (or its line): skip its remaining blocks this cycle
    silent: ClassVar[bool] = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Timeout(DriverError):
    """Nothing came back within the timeout."""

    silent = True


class Unreachable(DriverError):
    """No connection to the device (refused, unreachable, or lost mid-request)."""

    silent = True


class PortUnavailable(DriverError):
    """The serial port cannot be used (missing, permission denied, busy, unplugged)."""

    silent = True


class BadFrame(DriverError):
    """Bytes came back but did not make a valid answer (CRC, framing, wrong unit, not BCD)."""

    def __init__(self, reason: str = BAD_FRAME) -> None:
        super().__init__(reason)


class DeviceException(DriverError):
    """The device answered with an error: a Modbus exception or a DL/T 645 error reply."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


class IllegalAddress(DeviceException):
    """Modbus exception 2: the block reaches outside the device's map; halving it can help."""


class Unsupported(DriverError):
    """We cannot ask for this (e.g. a DL/T 645 data identifier without a known format)."""
