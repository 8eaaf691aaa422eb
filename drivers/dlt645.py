"""DL/T 645-2007 framing: ``FE.. 68 A0..A5 68 C L DATA(+0x33) CS 16``.

The decoder takes any bytes (line noise, partial frames, wake-up ``FE`` preambles) and
returns complete frames; it resynchronises by dropping one byte at a time and never raises
on input (property-tested with hypothesis).
"""

from __future__ import annotations

from dataclasses import dataclass

WAKE = b"\xfe\xfe\xfe\xfe"
BROADCAST_READ_ADDRESS = "AAAAAAAAAAAA"

C_READ = 0x11
C_READ_ADDRESS = 0x13
C_READ_OK = 0x91
C_READ_OK_MORE = 0xB1
C_READ_ERR = 0xD1
C_ADDRESS_OK = 0x93

ERROR_BITS = {
    0x01: "other error",
    0x02: "no requested data (data identifier not supported)",
    0x04: "password error / unauthorised",
    0x08: "baud rate cannot be changed",
    0x10: "annual time zones exceeded",
    0x20: "daily time slots exceeded",
    0x40: "tariffs exceeded",
}


def error_text(code: int) -> str:
    names = [text for bit, text in ERROR_BITS.items() if code & bit]
    return f"meter error 0x{code:02X}: " + ("; ".join(names) or "unknown")


def address_bytes(address: str) -> bytes:
    """12-digit address (as printed on the meter) → 6 bytes, least significant pair first."""
    if len(address) != 12:
        raise ValueError("a DL/T 645 address has 12 digits")
    return bytes(int(address[i : i + 2], 16) for i in range(10, -2, -2))


def address_text(raw: bytes) -> str:
    return "".join(f"{b:02X}" for b in reversed(raw))


def di_bytes(di: str) -> bytes:
    """Data identifier ``DI3DI2DI1DI0`` (e.g. ``00010000``) → bytes DI0 first."""
    return bytes(int(di[i : i + 2], 16) for i in range(6, -2, -2))


def encode(address: str, control: int, data: bytes = b"", wake: bool = True) -> bytes:
    body = b"\x68" + address_bytes(address) + b"\x68" + bytes([control, len(data)])
    body += bytes((b + 0x33) & 0xFF for b in data)
    frame = body + bytes([sum(body) & 0xFF, 0x16])
    return (WAKE if wake else b"") + frame


def read_request(address: str, di: str) -> bytes:
    return encode(address, C_READ, di_bytes(di))


def read_address_request() -> bytes:
    return encode(BROADCAST_READ_ADDRESS, C_READ_ADDRESS)


@dataclass(frozen=True)
class Frame:
    address: str
    control: int
    data: bytes  # with the +0x33 offset already removed


class Decoder:
    """Incremental frame decoder; feed bytes, collect frames."""

    MAX_BUFFER = 4096

    def __init__(self) -> None:
        self.buffer = bytearray()
        #: bytes skipped, wake-up ``FE`` preambles included
        self.dropped = 0
        #: bytes skipped that were line noise (everything but the ``FE`` wake-up bytes)
        self.noise = 0

    def _discard(self, n: int) -> None:
        """Drop the first ``n`` buffered bytes, counting them."""
        head = self.buffer[:n]
        self.dropped += n
        self.noise += n - head.count(0xFE)
        del self.buffer[:n]

    def pending_noise(self) -> int:
        """Bytes still buffered that are not wake-up bytes (at the end of a read: an unfinished
        or corrupted frame)."""
        return len(self.buffer) - self.buffer.count(0xFE)

    def feed(self, chunk: bytes) -> list[Frame]:
        self.buffer += chunk
        frames: list[Frame] = []
        while True:
            start = self.buffer.find(0x68)
            if start < 0:
                self._discard(len(self.buffer))
                return frames
            if start:
                self._discard(start)
            if len(self.buffer) < 12:
                if len(self.buffer) > self.MAX_BUFFER:
                    self._discard(len(self.buffer))
                return frames
            if self.buffer[7] != 0x68:
                self._skip()
                continue
            length = self.buffer[9]
            total = 12 + length
            if len(self.buffer) < total:
                # Possibly a false start in noise claiming a long length: if a complete,
                # valid frame starts later in the buffer, resynchronise onto it now.
                later = self._complete_frame_after(1)
                if later is None:
                    return frames
                self._discard(later)
                continue
            frame = bytes(self.buffer[:total])
            if frame[-1] != 0x16 or sum(frame[:-2]) & 0xFF != frame[-2]:
                self._skip()
                continue
            del self.buffer[:total]
            data = bytes((b - 0x33) & 0xFF for b in frame[10 : 10 + length])
            frames.append(Frame(address_text(frame[1:7]), frame[8], data))

    def _complete_frame_after(self, offset: int) -> int | None:
        buf = self.buffer
        pos = buf.find(0x68, offset)
        while pos >= 0 and pos + 12 <= len(buf):
            if buf[pos + 7] == 0x68:
                end = pos + 12 + buf[pos + 9]
                if end <= len(buf) and buf[end - 1] == 0x16 and sum(buf[pos : end - 2]) & 0xFF == buf[end - 2]:
                    return pos
            pos = buf.find(0x68, pos + 1)
        return None

    def _skip(self) -> None:
        self._discard(1)
