"""A block's register words → point values, with the per-point decisions made once per block.

Decoding is the poll loop's hottest code: 100 devices x 100 points is 10,000 values a second.
``codec.decode`` decides the type, order and scaling of each point on every poll and builds
bytes word by word; ``BlockDecoder`` decides once, when the block is first read, and then
takes a plain big-endian 16-bit word as it is, and any other big-endian number with one
``struct.unpack_from`` out of the block's bytes. Word-swapped, byte-swapped, bit, bool and
string points, and a short answer, go through ``codec.decode`` unchanged: the same values and
the same errors (``tests/drivers/test_blockdecode.py`` compares both over every type and order).
"""

from __future__ import annotations

import math
import struct

from config.drivers import PointSettings
from drivers.codec import _FORMATS, DecodeError, decode
from drivers.planner import Block
from drivers.protocol import BadValue, Values

_WORD, _INT16, _PACKED, _GENERIC = range(4)


class BlockDecoder:
    """Decodes the words of one planned block (the block must not change after this is built)."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.start = block.start
        self.bits = block.table is not None and block.table.is_bits
        self.needs = max((p.address - block.start + p.registers for p in block.points), default=0)
        #: per point: (name, how, word offset, struct for _PACKED, scale, offset, the point)
        self.plan: list[tuple[str, int, int, struct.Struct | None, float, float, PointSettings]] = []
        for p in block.points:
            off = p.address - block.start
            plain = p.order == "ABCD" and p.scale == 1.0 and p.offset == 0.0
            if p.type == "uint16" and plain:
                how = _WORD
            elif p.type == "int16" and plain:
                how = _INT16
            elif p.type in _FORMATS and p.order == "ABCD":
                how = _PACKED
            else:
                how = _GENERIC
            packer = struct.Struct(_FORMATS[p.type]) if how == _PACKED else None
            self.plan.append((p.name, how, off, packer, p.scale, p.offset, p))
        self.packed = any(step[1] == _PACKED for step in self.plan)

    def __call__(self, words: list[int]) -> Values:
        values: Values = {}
        if self.bits:
            start = self.start
            for p in self.block.points:
                values[p.name] = bool(words[p.address - start])
            return values
        if len(words) < self.needs:  # a short answer: each point says what it lacks, as before
            return self._generic(words)
        raw = struct.pack(f">{len(words)}H", *[w & 0xFFFF for w in words]) if self.packed else b""
        for name, how, off, packer, scale, offset, p in self.plan:
            if how == _WORD:
                values[name] = words[off] & 0xFFFF
            elif how == _INT16:
                w = words[off] & 0xFFFF
                values[name] = w - 0x10000 if w & 0x8000 else w
            elif how == _PACKED:
                assert packer is not None
                (value,) = packer.unpack_from(raw, 2 * off)
                if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
                    values[name] = BadValue(f"{name}: register value is not a number (NaN/Inf)")
                elif scale != 1.0 or offset != 0.0:
                    values[name] = value * scale + offset
                else:
                    values[name] = value
            else:
                try:
                    values[name] = decode(p, words[off : off + p.registers])
                except DecodeError as exc:
                    values[name] = BadValue(str(exc))
        return values

    def _generic(self, words: list[int]) -> Values:
        values: Values = {}
        for name, _how, off, _packer, _scale, _offset, p in self.plan:
            try:
                values[name] = decode(p, words[off : off + p.registers])
            except DecodeError as exc:
                values[name] = BadValue(str(exc))
        return values
