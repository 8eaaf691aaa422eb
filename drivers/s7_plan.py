"""S7 request planning and decoding: points of one area (or data block) coalesced into byte ranges.

The same greedy cut as the Modbus planner (``drivers/planner.py``, optimal for fixed-size
items on a line with a bounded span and bounded gaps), over bytes: a block grows while the
next point starts at most ``gap_fill`` bytes after the block's end and the block fits in one
read answer (``max_bytes`` = negotiated PDU minus the 18 bytes of S7 header, parameters and
item header). Nothing here imports snap7: the planner and codec are tested without a PLC.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from config.drivers import PointSettings, S7Point
from config.s7addr import TYPES, S7Location
from drivers.planner import Block
from drivers.protocol import BadValue, Value, Values

#: bytes of a read answer that are not data: S7 header 12, parameters 2, item header 4
READ_OVERHEAD = 18


@dataclass
class S7Block(Block):
    """One read of ``count`` bytes from ``start`` in ``area`` (data block ``db``)."""

    area: str = "DB"
    db: int = 0
    s7_points: list[S7Point] = field(default_factory=list)

    @property
    def where(self) -> str:
        name = f"DB{self.db}" if self.area == "DB" else self.area
        return f"{name} bytes {self.start}..{self.end - 1}"


def s7_points(points: Sequence[PointSettings]) -> list[S7Point]:
    """The S7 points among ``points`` (an S7 device has no others; the check keeps mypy honest)."""
    out = [p for p in points if isinstance(p, S7Point)]
    if len(out) != len(points):
        raise TypeError("an S7 device was given non-S7 points")
    return out


def plan_s7(points: Sequence[S7Point], *, max_bytes: int, gap_fill: int) -> list[S7Block]:
    """Fewest byte-range reads for ``points`` (one poll group), per area and data block."""
    by_area: dict[tuple[str, int], list[S7Point]] = {}
    for p in points:
        by_area.setdefault((p.s7.area, p.s7.db), []).append(p)
    blocks: list[S7Block] = []
    for (area, db), pts in sorted(by_area.items()):
        current: S7Block | None = None
        for p in sorted(pts, key=lambda q: (q.s7.byte, -q.s7.size)):
            loc = p.s7
            if current is not None:
                end = max(current.end, loc.end)
                if end - current.start <= max_bytes and loc.byte - current.end <= gap_fill:
                    current.count = end - current.start
                    current.points.append(p)
                    current.s7_points.append(p)
                    continue
            current = S7Block(None, loc.byte, loc.size, [p], area=area, db=db, s7_points=[p])
            blocks.append(current)
    return blocks


def decode(loc: S7Location, raw: bytes | bytearray) -> Value | BadValue:
    """The raw value at ``loc`` from exactly ``loc.size`` bytes (big-endian, S7 layout)."""
    if loc.type == "BOOL":
        return bool((raw[0] >> loc.bit) & 1)
    if loc.type.startswith("STRING"):
        capacity, length = raw[0], raw[1]
        declared = loc.size - 2
        if length > declared or length > capacity:
            return BadValue(f"{loc.text}: STRING header says {length} characters, the string holds {min(declared, capacity)}")
        return bytes(raw[2 : 2 + length]).decode("latin-1")
    (value,) = struct.unpack(TYPES[loc.type][1], raw)
    if isinstance(value, float) and not math.isfinite(value):
        return BadValue(f"{loc.text}: {loc.type} is not a number (NaN/Inf)")
    return value


def decode_points(points: Sequence[S7Point], start: int, raw: bytes | bytearray) -> Values:
    """Engineering values of ``points`` out of bytes read from ``start`` (scale and offset applied)."""
    values: Values = {}
    for p in points:
        loc = p.s7
        offset = loc.byte - start
        value = decode(loc, raw[offset : offset + loc.size])
        if isinstance(value, int | float) and not isinstance(value, bool) and (p.scale != 1.0 or p.offset != 0.0):
            value = value * p.scale + p.offset
        if isinstance(value, float) and not math.isfinite(value):
            values[p.name] = BadValue(f"{loc.text}: value is not a finite number (NaN/Inf, or too large once scaled)")
            continue
        values[p.name] = value
    return values
