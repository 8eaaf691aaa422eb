"""Decoding of every type and byte/word order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.drivers import PointSettings
from drivers.codec import DecodeError, decode, encode, ordered_bytes


def pt(**kw) -> PointSettings:
    return PointSettings(name="p", **kw)


@pytest.mark.parametrize(
    ("order", "regs"),
    [("ABCD", [0x3F80, 0x0000]), ("CDAB", [0x0000, 0x3F80]), ("BADC", [0x803F, 0x0000]), ("DCBA", [0x0000, 0x803F])],
)
def test_float32_one_in_every_order(order: str, regs: list[int]) -> None:
    assert decode(pt(type="float32", order=order), regs) == 1.0


@pytest.mark.parametrize(
    ("kind", "regs", "value"),
    [
        ("int16", [0xFFFE], -2),
        ("uint16", [0xFFFE], 65534),
        ("int32", [0xFFFF, 0xFFFD], -3),
        ("uint32", [0x0001, 0x0000], 65536),
        ("int64", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], -1),
        ("uint64", [0, 0, 1, 0], 65536),
        ("float64", [0x4009, 0x21FB, 0x5444, 0x2D18], math.pi),
    ],
)
def test_integer_and_double_types(kind: str, regs: list[int], value: float) -> None:
    assert decode(pt(type=kind), regs) == value


def test_word_swapped_int32_and_int64() -> None:
    assert decode(pt(type="uint32", order="CDAB"), [0x0000, 0x0001]) == 65536
    assert decode(pt(type="uint64", order="CDAB"), [0, 1, 0, 0]) == 65536  # least significant word first


def test_bit_string_scale_offset() -> None:
    assert decode(pt(type="bit", bit=3), [0b1000]) is True
    assert decode(pt(type="bit", bit=2), [0b1000]) is False
    assert decode(pt(type="string", length=3), [0x4845, 0x4144, 0x0000]) == "HEAD"
    assert decode(pt(type="string", length=2, order="BADC"), [0x4548, 0x4441]) == "HEAD"
    assert decode(pt(type="int16", scale=0.1, offset=-40), [500]) == pytest.approx(10.0)


def test_nan_is_bad_not_a_value() -> None:
    with pytest.raises(DecodeError, match="not a number"):
        decode(pt(type="float32"), [0x7FC0, 0x0000])
    with pytest.raises(DecodeError, match="needs 2"):
        decode(pt(type="float32"), [0x3F80])


@given(st.floats(allow_nan=False, allow_infinity=False, width=32), st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))
def test_float32_roundtrip_any_order(value: float, order: str) -> None:
    p = pt(type="float32", order=order)
    assert decode(p, encode(p, value)) == value


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))
def test_int64_roundtrip_any_order(value: int, order: str) -> None:
    p = pt(type="int64", order=order)
    assert decode(p, encode(p, value)) == value


def test_ordered_bytes_permutations() -> None:
    regs = [0x0102, 0x0304]
    assert ordered_bytes(regs, "ABCD") == bytes([1, 2, 3, 4])
    assert ordered_bytes(regs, "CDAB") == bytes([3, 4, 1, 2])
    assert ordered_bytes(regs, "BADC") == bytes([2, 1, 4, 3])
    assert ordered_bytes(regs, "DCBA") == bytes([4, 3, 2, 1])
