"""A fast slice of the field-bus fuzzing (the 100k-frame run is ``python -m bench.fuzz_frames``).

Every answer a device sends is hostile: mutated and random frames must end as values of the
right shape or one of our ``DriverError`` types, never another exception, never a hang.
"""

from __future__ import annotations

import pytest

from bench.fuzz_frames import Outcome, fuzz_dlt645, fuzz_rtu, fuzz_tcp_framer, fuzz_tcp_socket


def _assert_clean(out: Outcome, expect: set[str]) -> None:
    assert out.crashes == [], out.crashes
    assert out.hangs == 0
    # the slice must reach the parsers' decisions, not only bounce off the first check
    assert expect <= set(out.results), out.results


@pytest.mark.parametrize("seed", [11, 12])
def test_modbus_rtu_answers_never_crash_the_parser(seed: int) -> None:
    _assert_clean(fuzz_rtu(4000, seed), {"values", "BadFrame", "DeviceException"})


@pytest.mark.parametrize("seed", [21, 22])
def test_dlt645_answers_never_crash_the_decoder(seed: int) -> None:
    _assert_clean(fuzz_dlt645(4000, seed), {"value", "BadFrame", "DeviceException", "Timeout"})


@pytest.mark.parametrize("seed", [31, 32])
def test_modbus_tcp_answers_never_crash_the_framer(seed: int) -> None:
    _assert_clean(fuzz_tcp_framer(4000, seed), {"values", "incomplete", "DeviceException"})


def test_modbus_tcp_link_survives_mutated_answers_over_a_real_socket() -> None:
    out = fuzz_tcp_socket(200, seed=41, links=16, timeout=0.3)
    _assert_clean(out, {"values", "BadFrame"})
    assert out.frames == 200
