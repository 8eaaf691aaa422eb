"""DL/T 645-2007 codec: framing, BCD, error replies, resynchronisation on garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import dlt645
from drivers.dlt645_ids import FORMATS, bcd_decode, bcd_encode, decode_value
from drivers.errors import BadFrame


def test_read_request_bytes_match_the_standard() -> None:
    # address 123456789012, DI 00010000 (forward active energy): classic worked example layout
    frame = dlt645.read_request("123456789012", "00010000")
    assert frame[:4] == b"\xfe\xfe\xfe\xfe"
    body = frame[4:]
    assert body[0] == 0x68 and body[7] == 0x68 and body[-1] == 0x16
    assert body[1:7] == bytes([0x12, 0x90, 0x78, 0x56, 0x34, 0x12])
    assert body[8] == 0x11 and body[9] == 4
    assert body[10:14] == bytes([0x33, 0x33, 0x34, 0x33])  # DI0..DI3 each +0x33
    assert body[-2] == sum(body[:-2]) & 0xFF


def test_decoder_roundtrip_and_address() -> None:
    wire = dlt645.encode("000000001234", dlt645.C_READ_OK, dlt645.di_bytes("02010100") + bcd_encode(229.8, 2, 1, False))
    (frame,) = dlt645.Decoder().feed(wire)
    assert frame.address == "000000001234" and frame.control == dlt645.C_READ_OK
    assert decode_value("02010100", frame.data) == pytest.approx(229.8)


def test_bcd_signed_and_formats() -> None:
    assert bcd_decode(bytes([0x56, 0x34, 0x12, 0x00]), 2, False) == 1234.56
    assert bcd_decode(bcd_encode(-1.2345, 3, 4, True), 4, True) == -1.2345
    with pytest.raises(BadFrame, match="not BCD"):
        bcd_decode(bytes([0x1A]), 0, False)
    assert FORMATS["02030000"].unit == "kW" and FORMATS["00010000"].nbytes == 4


def test_error_reply_is_decoded_in_words() -> None:
    assert "no requested data" in dlt645.error_text(0x02)
    assert "password" in dlt645.error_text(0x04)


def test_resynchronises_after_garbage_and_split_reads() -> None:
    good = dlt645.encode("123456789012", dlt645.C_ADDRESS_OK, dlt645.address_bytes("123456789012"))
    noisy = b"\x68\x00\x11garbage\x68" + good[:9]
    dec = dlt645.Decoder()
    assert dec.feed(noisy) == []
    frames = dec.feed(good[9:] + b"\xff\x68")
    assert [f.address for f in frames] == ["123456789012"]
    assert dec.dropped > 0


def test_noise_is_counted_but_wake_up_bytes_are_not() -> None:
    """Bus health reports ``bytes_noise``: garbage and corrupted frames, never the FE preamble."""
    good = dlt645.encode("123456789012", dlt645.C_ADDRESS_OK, dlt645.address_bytes("123456789012"))
    assert good.startswith(b"\xfe\xfe\xfe\xfe")
    dec = dlt645.Decoder()
    assert len(dec.feed(good + good)) == 2
    assert dec.noise == 0 and dec.dropped == 8  # 2 × 4 wake-up bytes skipped, none of it noise
    corrupt = bytearray(good)
    corrupt[-3] ^= 0x5A  # one data byte hit: the checksum fails
    dec = dlt645.Decoder()
    frames = dec.feed(b"\x01\x68\x02\xfe\x03" + bytes(corrupt) + good)
    assert len(frames) == 1  # the corrupted answer is skipped, the good one after it found
    assert dec.noise + dec.pending_noise() == 4 + len(corrupt) - 4  # garbage minus its FE, frame minus preamble
    dec = dlt645.Decoder()
    assert dec.feed(bytes(corrupt)) == [] and dec.noise + dec.pending_noise() == len(corrupt) - 4


def test_bad_checksum_is_skipped() -> None:
    good = bytearray(dlt645.encode("123456789012", dlt645.C_READ_ERR, b"\x02", wake=False))
    bad = bytearray(good)
    bad[-2] ^= 0xFF
    frames = dlt645.Decoder().feed(bytes(bad) + bytes(good))
    assert len(frames) == 1 and frames[0].data == b"\x02"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_decoder_never_crashes_on_any_input(chunks: list[bytes]) -> None:
    dec = dlt645.Decoder()
    for chunk in chunks:
        for frame in dec.feed(chunk):
            assert len(frame.address) == 12
    assert len(dec.buffer) <= dlt645.Decoder.MAX_BUFFER + 64


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40), st.integers(0, 99999999))
def test_valid_frame_found_inside_noise(prefix: bytes, suffix: bytes, value: int) -> None:
    frame = dlt645.encode("000011112222", dlt645.C_READ_OK, dlt645.di_bytes("00010000") + bcd_encode(value / 100, 4, 2, False))
    frames = dlt645.Decoder().feed(prefix + frame + suffix)
    ours = [f for f in frames if f.address == "000011112222" and f.control == dlt645.C_READ_OK]
    assert ours, "a valid frame surrounded by noise must be found"
    assert decode_value("00010000", ours[0].data) == pytest.approx(value / 100)
