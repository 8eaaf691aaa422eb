"""Every S7 answer is hostile input: real answers from snap7's server, mutated, must end as data
of the asked size or one of our error types (never another exception, never short data)."""

from __future__ import annotations

import asyncio
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st
from snap7 import AsyncClient
from snap7.datatypes import S7Area, S7WordLen
from snap7.s7protocol import S7Protocol

from drivers.errors import DriverError
from drivers.s7_driver import OutOfRange, interpret_answer
from tests.support.s7plc import S7Plc

COUNT = 6


@cache
def real_answers() -> tuple[tuple[bytes, bytes], ...]:
    """(request, answer) pairs captured from the server: data, out of range (0x05), no such DB (0x0A)."""
    plc = S7Plc({("DB", 1): 8}).start()
    plc.write("DB", 1, 0, bytes(range(1, 9)))

    async def capture() -> list[tuple[bytes, bytes]]:
        client = AsyncClient()
        await client.connect("127.0.0.1", 0, 1, plc.port)
        pairs = []
        for db, start in ((1, 0), (1, 4), (2, 0)):
            req = client.protocol.build_read_request(S7Area.DB, db, start, S7WordLen.BYTE, COUNT)
            pairs.append((req, bytes(await client.iso_exchange_buffer(bytearray(req)))))
        await client.disconnect()
        return pairs

    try:
        return tuple(asyncio.run(capture()))
    finally:
        plc.stop()


def check(request: bytes, answer: bytes) -> None:
    try:
        data = interpret_answer(S7Protocol(), request, answer, COUNT, "DB1 bytes 0..5")
    except (DriverError, OutOfRange):
        return
    assert len(data) == COUNT


def test_the_real_answers_mean_what_they_say() -> None:
    (ok_req, ok), (range_req, short), (db_req, missing) = real_answers()
    assert interpret_answer(S7Protocol(), ok_req, ok, COUNT, "w") == bytes(range(1, 7))
    try:
        interpret_answer(S7Protocol(), range_req, short, COUNT, "w")
        raise AssertionError("0x05 must be OutOfRange")
    except OutOfRange:
        pass
    try:
        interpret_answer(S7Protocol(), db_req, missing, COUNT, "w")
        raise AssertionError("0x0A must be a DeviceException")
    except DriverError as exc:
        assert "no such data block" in exc.reason


@settings(max_examples=700, deadline=None)
@given(
    st.integers(0, 2),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=4),
    st.integers(0, 40),
    st.binary(max_size=6),
)
def test_mutated_answers_end_as_data_or_our_errors(which: int, flips: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    request, answer = real_answers()[which]
    raw = bytearray(answer)
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    if cut:
        raw = raw[: max(0, len(raw) - cut)]
    check(request, bytes(raw) + tail)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_noise_ends_as_our_errors(noise: bytes) -> None:
    check(real_answers()[0][0], noise)
