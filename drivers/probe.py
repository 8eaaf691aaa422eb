"""One register read or a unit scan, as the technician's tools do it (``headframe probe``/``scan``
and the technician's page share this code, so they say the same thing about the same device)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from config.drivers import PointSettings, RegisterTable
from drivers import modbus_rtu
from drivers.bus import SerialBus
from drivers.codec import DecodeError, decode
from drivers.errors import DeviceException, DriverError, PortUnavailable
from drivers.modbus_tcp import TcpLink

ValueType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}


@dataclass(frozen=True)
class RegisterRead:
    """What to read: ``count`` values of ``type`` from ``start`` (bits for coils and inputs)."""

    table: RegisterTable
    start: int
    count: int = 1
    type: ValueType = "uint16"
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"

    @property
    def registers(self) -> int:
        return self.count if self.table.is_bits else self.count * WORDS[self.type]


@dataclass
class ReadResult:
    raw: list[int]
    #: (address, value or "(bad: why)") per value read
    values: list[tuple[int, float | int | str]] = field(default_factory=list)


def decode_read(read: RegisterRead, regs: list[int]) -> ReadResult:
    """Decode what came back; a value that is no value of its type says why instead."""
    if read.table.is_bits:
        return ReadResult(regs, [(read.start + i, bit) for i, bit in enumerate(regs)])
    words = WORDS[read.type]
    out: list[tuple[int, float | int | str]] = []
    for i in range(read.count):
        chunk = regs[i * words : (i + 1) * words]
        point = PointSettings(name="p", address=read.start + i * words, type=read.type, order=read.order)
        try:
            value: float | int | str = decode(point, chunk)
        except DecodeError as exc:
            value = f"(bad: {exc})"
        out.append((read.start + i * words, value))
    return ReadResult(regs, out)


async def read_tcp(host: str, port: int, unit: int, read: RegisterRead, timeout: float) -> ReadResult:
    """One read from a Modbus TCP device; raises ``DriverError`` with the technician's words."""
    link = TcpLink(host, port, unit, timeout)
    try:
        return decode_read(read, await link.read_registers(read.table, read.start, read.registers))
    finally:
        await link.close()


async def read_rtu(bus: SerialBus, unit: int, read: RegisterRead, timeout: float) -> ReadResult:
    """One read from a Modbus RTU unit, in turn with everything else on the bus."""
    regs = await modbus_rtu.read_registers(bus, unit, read.table, read.start, read.registers, timeout)
    return decode_read(read, regs)


@dataclass(frozen=True)
class Found:
    unit: int
    answer: str  # "answered" or the exception reply in words (a live unit all the same)


async def scan_units(
    bus: SerialBus,
    units: list[int],
    register: int,
    timeout: float,
    deadline: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Found], bool]:
    """Ask each unit for one holding register; returns who answered and whether it finished
    before ``deadline`` (monotonic). A port that fails raises ``PortUnavailable``."""
    found: list[Found] = []
    for n, unit in enumerate(units):
        if time.monotonic() > deadline:
            return found, False
        if progress is not None:
            progress(n, unit)
        try:
            await modbus_rtu.read_registers(bus, unit, RegisterTable.HOLDING, register, 1, timeout)
            found.append(Found(unit, "answered"))
        except DeviceException as exc:  # an exception reply is still a live unit
            found.append(Found(unit, exc.reason))
        except PortUnavailable:
            raise
        except DriverError:
            continue
    return found, True
