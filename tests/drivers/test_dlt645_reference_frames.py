"""DL/T 645-2007 against frames written down by others, byte by byte — not built from our tables.

The simulator and the decoder share ``drivers/dlt645_ids.FORMATS``; a mistake in that table (or
in the framing) would pass every round-trip test. These frames were copied as hex from public
worked examples of the 2007 protocol (sources per frame); our encoder must produce the requests
byte for byte and our decoder must read the answers to the values the sources state.
"""

from __future__ import annotations

import pytest

from drivers import dlt645
from drivers.dlt645_driver import interpret_reply
from drivers.dlt645_ids import bcd_decode

# Source A: "DL645通信协议97/07规约(附上下行例子)", https://m.icode9.com/content-4-712469.html
# (the same text at https://553668.com/manong/786292.html), section 四 举例说明 and note 5.
# Source B: 亿佰特物联网实验室 (Ebyte IoT lab), quoted at https://mbb.eet-china.com/forum/topic/114707_1_1.html
A_READ_ENERGY = "68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16"
A_ANSWER_1206_42 = "68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16"
A_READ_ADDRESS = "FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16"
B_READ_COMBINED = "68 03 20 12 22 20 65 68 11 04 33 33 33 33 8D 16"
B_ANSWER_ZERO = "68 03 20 12 22 20 65 68 91 08 33 33 33 33 33 33 33 33 DD 16"
B_ANSWER_VOLTAGES = "FE FE FE FE 68 18 20 12 22 20 65 68 91 0A 33 32 34 35 33 33 33 33 C7 56 13 16"


def wire(text: str) -> bytes:
    return bytes.fromhex(text)


def test_read_requests_are_byte_identical_to_the_published_ones() -> None:
    # address 000102030425 (source A: "实际地址为0102030425"), DI 00010000 forward active total
    assert dlt645.encode("000102030425", dlt645.C_READ, dlt645.di_bytes("00010000"), wake=False) == wire(A_READ_ENERGY)
    assert dlt645.read_request("000102030425", "00010000") == b"\xfe" * 4 + wire(A_READ_ENERGY)
    # address 652022122003, DI 00000000 combined active total (source B)
    assert dlt645.encode("652022122003", dlt645.C_READ, dlt645.di_bytes("00000000"), wake=False) == wire(B_READ_COMBINED)


def test_broadcast_read_address_request_matches_the_published_frame() -> None:
    # source A note 5 shows three wake-up bytes; we send four (the standard allows up to four)
    assert dlt645.read_address_request() == b"\xfe" + wire(A_READ_ADDRESS)


def test_published_energy_answer_decodes_to_its_stated_value() -> None:
    (frame,) = dlt645.Decoder().feed(wire(A_ANSWER_1206_42))
    assert frame.address == "000102030425" and frame.control == dlt645.C_READ_OK
    # source A: "75394533->42061200，得到的数值为1206.42"
    assert interpret_reply(frame, "000102030425", "00010000") == pytest.approx(1206.42)


def test_published_zero_answer_and_voltage_block_decode() -> None:
    dec = dlt645.Decoder()
    zero, volts = dec.feed(wire(B_ANSWER_ZERO) + wire(B_ANSWER_VOLTAGES))
    assert interpret_reply(zero, "652022122003", "00000000") == 0.0
    # DI 33 32 34 35 − 0x33 = 00 FF 01 02 → 0201FF00 (voltage block A, B, C; XXX.X V, 2 bytes each)
    assert volts.address == "652022122018" and volts.data[:4] == dlt645.di_bytes("0201FF00")
    phases = [bcd_decode(volts.data[i : i + 2], 1, False) for i in (4, 6, 8)]
    assert phases == [0.0, 0.0, pytest.approx(239.4)]


def test_a_published_frame_with_one_byte_changed_is_refused() -> None:
    bad = bytearray(wire(A_ANSWER_1206_42))
    bad[14] ^= 0x01  # one value byte: the published checksum no longer matches
    assert dlt645.Decoder().feed(bytes(bad)) == []
