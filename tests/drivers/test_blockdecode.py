"""The compiled block decoder gives exactly what ``codec.decode`` gives, point by point."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from config.drivers import TYPE_REGISTERS, PointSettings, RegisterTable
from drivers.blockdecode import BlockDecoder
from drivers.codec import DecodeError, decode
from drivers.planner import Block
from drivers.protocol import BadValue

NUMERIC = [t for t in TYPE_REGISTERS if t not in ("bit", "string", "bool")]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def reference(points: list[PointSettings], start: int, words: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in points:
        off = p.address - start
        try:
            out[p.name] = decode(p, words[off : off + p.registers])
        except DecodeError as exc:
            out[p.name] = BadValue(str(exc))
    return out


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if type(x) is not type(y):
            return False
        if isinstance(x, float) and math.isnan(x):
            return math.isnan(y)
        if x != y:
            return False
    return True


@st.composite
def blocks(draw: Any) -> tuple[Block, list[int]]:
    points, addr = [], 10
    for i in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from([*NUMERIC, "bit", "string"]))
        kw: dict[str, Any] = {"type": kind, "order": draw(st.sampled_from(ORDERS))}
        if kind == "bit":
            kw["bit"] = draw(st.integers(0, 15))
        if kind == "string":
            kw["length"] = draw(st.integers(1, 4))
        if kind in NUMERIC and draw(st.booleans()):
            kw["scale"], kw["offset"] = draw(st.sampled_from([(0.1, 0.0), (1.0, -40.0), (2.5, 3.0)]))
        p = PointSettings(name=f"p{i}", address=addr, **kw)
        points.append(p)
        addr += p.registers + draw(st.integers(0, 2))
    count = addr - 10
    n = draw(st.sampled_from([count, count, count, max(0, count - draw(st.integers(1, 3)))]))  # sometimes short
    words = draw(st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n))
    return Block(RegisterTable.HOLDING, 10, count, points), words


@settings(max_examples=400, deadline=None)
@given(blocks())
def test_same_values_and_errors_as_codec_decode(case: tuple[Block, list[int]]) -> None:
    block, words = case
    assert same(BlockDecoder(block)(words), reference(block.points, block.start, words))


def test_plain_words_signed_words_nan_and_short_answer() -> None:
    pts = [
        PointSettings(name="u", address=0, type="uint16"),
        PointSettings(name="i", address=1, type="int16"),
        PointSettings(name="f", address=2, type="float32"),
        PointSettings(name="s", address=4, type="int16", scale=0.1, offset=-40),
    ]
    dec = BlockDecoder(Block(RegisterTable.HOLDING, 0, 5, pts))
    got = dec([0xFFFE, 0xFFFE, 0x7FC0, 0x0000, 500])
    assert got["u"] == 65534 and got["i"] == -2 and abs(got["s"] - 10.0) < 1e-9
    assert isinstance(got["f"], BadValue) and "not a number" in got["f"].reason
    short = dec([1, 2, 3])
    assert short["u"] == 1 and short["i"] == 2
    assert isinstance(short["f"], BadValue) and "needs 2" in short["f"].reason
    assert isinstance(short["s"], BadValue)


def test_bits_table() -> None:
    pts = [PointSettings(name=f"c{i}", table=RegisterTable.COIL, address=i, type="bool") for i in range(3)]
    assert BlockDecoder(Block(RegisterTable.COIL, 0, 3, pts))([1, 0, 1]) == {"c0": True, "c1": False, "c2": True}
