"""Modbus RTU: framing (CRC-16/MODBUS) and the driver for a unit on a shared serial bus.

The bus (``drivers.bus.SerialBus``) holds the port for Modbus RTU *and* DL/T 645 meters,
one request at a time; pymodbus' serial client wants the port for itself, so RTU frames are
built and checked here. The peer in the tests is pymodbus' own RTU server.
"""

from __future__ import annotations

import struct
import time

from config.drivers import ModbusRtuDevice, RegisterTable
from drivers.bus import Line, Receiver, SerialBus
from drivers.errors import BadFrame, DeviceException, IllegalAddress, Timeout
from drivers.registers import RegisterDriver

FUNCTION = {RegisterTable.COIL: 1, RegisterTable.DISCRETE: 2, RegisterTable.HOLDING: 3, RegisterTable.INPUT: 4}

EXCEPTIONS = {
    1: "illegal function (the device does not support this request)",
    2: "illegal data address (register not in the device's map)",
    3: "illegal data value",
    4: "slave device failure",
    5: "acknowledge (request accepted, still processing)",
    6: "slave device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

NO_ANSWER = "timeout: no answer — check wiring (A/B), baud rate, parity and unit id"


def exception_text(code: int) -> str:
    return f"exception {code}: {EXCEPTIONS.get(code, 'unknown exception code')}"


def device_exception(code: int) -> DeviceException:
    """The typed error for a Modbus exception reply (TCP and RTU alike)."""
    cls = IllegalAddress if code == 2 else DeviceException
    return cls(exception_text(code), code)


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


def read_request(unit: int, table: RegisterTable, start: int, count: int) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, FUNCTION[table], start, count))


def write_registers_request(unit: int, start: int, values: list[int]) -> bytes:
    body = struct.pack(">BBHHB", unit, 16, start, len(values), 2 * len(values))
    return with_crc(body + b"".join(struct.pack(">H", v) for v in values))


def expected_length(table: RegisterTable, count: int) -> int:
    """Bytes of a normal response: addr, func, bytecount, data, crc."""
    data = (count + 7) // 8 if table.is_bits else 2 * count
    return 3 + data + 2


def parse_read_response(frame: bytes, unit: int, table: RegisterTable, count: int) -> list[int]:
    """Registers (or bits as 0/1) from a response; raises a DriverError subclass with the reason."""
    if len(frame) < 5:
        raise BadFrame()
    if crc16(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
        raise BadFrame("crc error: corrupted answer (noise, termination, or baud rate mismatch)")
    if frame[0] != unit:
        raise BadFrame(f"garbage: answer from unit {frame[0]}, expected {unit}")
    func = FUNCTION[table]
    if frame[1] == func | 0x80:
        raise device_exception(frame[2])
    if frame[1] != func:
        raise BadFrame(f"garbage: function {frame[1]} in answer, expected {func}")
    nbytes = frame[2]
    data = frame[3 : 3 + nbytes]
    if len(data) != nbytes or len(frame) != 5 + nbytes:
        raise BadFrame("garbage: byte count does not match the frame")
    if table.is_bits:
        bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(8 * nbytes)]
        if len(bits) < count:
            raise BadFrame("garbage: too few bits in answer")
        return bits[:count]
    if nbytes != 2 * count:
        raise BadFrame(f"garbage: {nbytes // 2} registers in answer, asked for {count}")
    return list(struct.unpack(f">{count}H", data))


def receive_read(unit: int, table: RegisterTable, count: int) -> Receiver[list[int]]:
    """The framing of one read answer, run on the bus thread."""

    def receive(line: Line, deadline: float) -> list[int]:
        head = line.read_until(3, deadline)  # unit, function, byte count (or exception code)
        if not head:
            raise Timeout(NO_ANSWER)
        if len(head) < 3:
            raise BadFrame()
        # the rest of a frame follows at line speed; allow for it beyond the answer timeout
        rest = line.read_until(2 if head[1] & 0x80 else min(head[2], 250) + 2, max(deadline, time.monotonic() + 0.3))
        return parse_read_response(head + rest, unit, table, count)

    return receive


async def read_registers(bus: SerialBus, unit: int, table: RegisterTable, start: int, count: int, timeout: float) -> list[int]:
    """One read on the bus (also used by ``headframe scan`` and ``probe``)."""
    return await bus.transact(read_request(unit, table, start, count), receive_read(unit, table, count), timeout)


class ModbusRtuDriver(RegisterDriver):
    """A Modbus RTU unit on a shared bus: the bus schedules, this class frames."""

    def __init__(self, dev: ModbusRtuDevice, bus: SerialBus) -> None:
        super().__init__(dev)
        self.bus, self.unit, self.timeout = bus, dev.unit, dev.timeout

    async def connect(self) -> None:
        await self.bus.ensure_open()

    async def read_registers(self, table: RegisterTable, start: int, count: int) -> list[int]:
        return await read_registers(self.bus, self.unit, table, start, count, self.timeout)
