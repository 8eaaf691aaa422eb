"""Modbus RTU framing (CRC-16/MODBUS) for the shared serial bus.

The bus owner (``drivers.serialbus``) holds the port for Modbus RTU *and* DL/T 645 meters,
one request at a time; pymodbus' serial client wants the port for itself, so RTU frames are
built and checked here. The peer in the tests is pymodbus' own RTU server.
"""

from __future__ import annotations

import struct

FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}

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


class ModbusError(Exception):
    """A request that did not produce values; ``reason`` is short and technician-readable."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


def exception_text(code: int) -> str:
    return f"exception {code}: {EXCEPTIONS.get(code, 'unknown exception code')}"


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


def read_request(unit: int, table: str, start: int, count: int) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, FUNCTION[table], start, count))


def write_registers_request(unit: int, start: int, values: list[int]) -> bytes:
    body = struct.pack(">BBHHB", unit, 16, start, len(values), 2 * len(values))
    return with_crc(body + b"".join(struct.pack(">H", v) for v in values))


def expected_length(table: str, count: int) -> int:
    """Bytes of a normal response: addr, func, bytecount, data, crc."""
    data = (count + 7) // 8 if table in ("coil", "discrete") else 2 * count
    return 3 + data + 2


def parse_read_response(frame: bytes, unit: int, table: str, count: int) -> list[int]:
    """Registers (or bits as 0/1) from a response; raises ModbusError with the reason."""
    if len(frame) < 5:
        raise ModbusError("timeout: no (complete) answer — check wiring, baud rate, parity and unit id")
    if crc16(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
        raise ModbusError("crc error: corrupted answer (noise, termination, or baud rate mismatch)")
    if frame[0] != unit:
        raise ModbusError(f"garbage: answer from unit {frame[0]}, expected {unit}")
    func = FUNCTION[table]
    if frame[1] == func | 0x80:
        raise ModbusError(exception_text(frame[2]), frame[2])
    if frame[1] != func:
        raise ModbusError(f"garbage: function {frame[1]} in answer, expected {func}")
    nbytes = frame[2]
    data = frame[3 : 3 + nbytes]
    if len(data) != nbytes or len(frame) != 5 + nbytes:
        raise ModbusError("garbage: byte count does not match the frame")
    if table in ("coil", "discrete"):
        bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(8 * nbytes)]
        if len(bits) < count:
            raise ModbusError("garbage: too few bits in answer")
        return bits[:count]
    if nbytes != 2 * count:
        raise ModbusError(f"garbage: {nbytes // 2} registers in answer, asked for {count}")
    return list(struct.unpack(f">{count}H", data))
