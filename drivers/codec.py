"""Turning Modbus registers into engineering values (and back, for enabled writes)."""

from __future__ import annotations

import math
import struct

from config.drivers import PointSettings

_FORMATS = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "int64": ">q",
    "uint64": ">Q",
    "float32": ">f",
    "float64": ">d",
}


class DecodeError(ValueError):
    """Registers that cannot be a value of the point's type (NaN, wrong count)."""


def ordered_bytes(registers: list[int], order: str) -> bytes:
    """Register words → bytes in ABCD order, undoing the device's byte/word order.

    ``ABCD`` big-endian (Modbus default), ``CDAB`` words swapped, ``BADC`` bytes swapped
    within each word, ``DCBA`` fully little-endian. For 64-bit values the same rule applies
    to all four words (``CDAB`` = least significant word first).
    """
    words = list(registers)
    if order in ("CDAB", "DCBA"):
        words.reverse()
    raw = b"".join(struct.pack(">H", w & 0xFFFF) for w in words)
    if order in ("BADC", "DCBA"):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def decode(point: PointSettings, registers: list[int]) -> float | int | bool | str:
    """Decode one point from its registers (already sliced to ``point.registers`` words)."""
    if len(registers) != point.registers:
        raise DecodeError(f"{point.name}: got {len(registers)} registers, type {point.type} needs {point.registers}")
    if point.type == "bit":
        return bool((registers[0] >> (point.bit or 0)) & 1)
    if point.type == "string":
        raw = ordered_bytes(registers, "BADC" if point.order in ("BADC", "DCBA") else "ABCD")
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    (value,) = struct.unpack(_FORMATS[point.type], ordered_bytes(registers, point.order))
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise DecodeError(f"{point.name}: register value is not a number (NaN/Inf)")
    if point.scale != 1.0 or point.offset != 0.0:
        return value * point.scale + point.offset
    return value


def encode(point: PointSettings, value: float | int) -> list[int]:
    """Engineering value → registers (for points with ``writable: true``)."""
    if point.type in ("bit", "string", "bool"):
        raise ValueError(f"{point.name}: writing type {point.type} is not supported")
    raw_value = (value - point.offset) / point.scale if (point.scale != 1.0 or point.offset != 0.0) else value
    if point.type not in ("float32", "float64"):
        raw_value = round(raw_value)
    raw = struct.pack(_FORMATS[point.type], raw_value)
    words = [struct.unpack(">H", raw[i : i + 2])[0] for i in range(0, len(raw), 2)]
    # ordered_bytes is its own inverse for these permutations
    back = ordered_bytes(words, point.order)
    return [struct.unpack(">H", back[i : i + 2])[0] for i in range(0, len(back), 2)]
