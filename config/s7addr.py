"""Siemens S7 absolute addresses and data types, parsed at config load (no snap7 import here).

An S7 point names its area, data block, byte (and bit) the way STEP 7 / TIA Portal write it:
``DB10.DBX4.2``, ``DB10.DBW6``, ``DB10.DBD8``, ``M4.2``, ``MW4``, ``I0.1`` / ``E0.1``,
``QB0`` / ``AB0`` (German mnemonics E/A accepted, a leading ``%`` too). The width letter
(X bit, B byte, W word, D double word) must fit the type; LREAL and STRING[n] start at the
byte given whatever the letter. Values are big-endian, as an S7 CPU stores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: S7 area code (the protocol's byte) per area letter; the driver hands it to snap7 unchanged
AREA_CODES = {"I": 0x81, "Q": 0x82, "M": 0x83, "DB": 0x84}
_AREA_ALIASES = {"E": "I", "A": "Q"}

#: bytes and ``struct`` format per fixed-size type (BOOL: one bit of one byte)
TYPES: dict[str, tuple[int, str]] = {
    "BOOL": (1, ""),
    "BYTE": (1, ">B"),
    "USINT": (1, ">B"),
    "SINT": (1, ">b"),
    "WORD": (2, ">H"),
    "UINT": (2, ">H"),
    "INT": (2, ">h"),
    "DWORD": (4, ">I"),
    "UDINT": (4, ">I"),
    "DINT": (4, ">i"),
    "REAL": (4, ">f"),
    "LREAL": (8, ">d"),
}
#: the types each width letter can hold; LREAL and STRING[n] take any byte-start letter
_WIDTH_TYPES = {
    "X": ("BOOL",),
    "B": ("BYTE", "USINT", "SINT"),
    "W": ("WORD", "INT", "UINT"),
    "D": ("DWORD", "DINT", "UDINT", "REAL"),
}
_ANY_START = ("LREAL", "STRING")

SYNTAX = (
    "an S7 address: DB<n>.DBX<byte>.<bit> (BOOL), DB<n>.DBB<byte>, DB<n>.DBW<byte>, DB<n>.DBD<byte>; "
    "M<byte>.<bit>, MB/MW/MD<byte>; I<byte>.<bit>, IB/IW/ID<byte> (or E...); Q<byte>.<bit>, QB/QW/QD<byte> (or A...)"
)
TYPE_SYNTAX = f"one of {', '.join(TYPES)} or STRING[n] (n 1..254)"

_DB = re.compile(r"DB(\d+)\.DB([XBWD])(\d+)(?:\.(\d+))?", re.ASCII)  # ASCII: no other scripts' digits
_OTHER = re.compile(r"([MIQEA])([XBWD]?)(\d+)(?:\.(\d+))?", re.ASCII)
_STRING = re.compile(r"STRING\s*\[\s*(\d+)\s*\]", re.ASCII)
#: the protocol addresses bits in 3 bytes: the last byte offset it can name
MAX_BYTE = (1 << 21) - 1


@dataclass(frozen=True, slots=True)
class S7Location:
    """Where one point lives and how wide it is: the planner and the codec need nothing else."""

    area: str  # "DB", "M", "I", "Q"
    db: int  # 0 outside data blocks
    byte: int
    bit: int
    type: str  # normalised: "REAL", "STRING[20]"
    size: int  # bytes read for the value (STRING[n]: n + 2 header bytes)
    text: str  # the address as configured, for messages

    @property
    def end(self) -> int:
        return self.byte + self.size

    @property
    def area_name(self) -> str:
        """``DB10`` or ``M``: how a technician names the place in messages."""
        return f"DB{self.db}" if self.area == "DB" else self.area


def normalise_type(value: str) -> str:
    """``real`` → ``REAL``, ``string[ 20 ]`` → ``STRING[20]``; ValueError naming the accepted types."""
    text = value.strip().upper()
    if text in TYPES:
        return text
    match = _STRING.fullmatch(text)
    if match and 1 <= int(match.group(1)) <= 254:
        return f"STRING[{int(match.group(1))}]"
    raise ValueError(TYPE_SYNTAX)


def type_size(type_name: str) -> int:
    match = _STRING.fullmatch(type_name)
    return int(match.group(1)) + 2 if match else TYPES[type_name][0]


def parse_address(text: str, type_name: str | None) -> S7Location:
    """The location of ``text`` holding a ``type_name`` (None: BOOL for a bit, BYTE for a byte).

    Raises ValueError with the accepted syntax, or saying which types fit the address.
    """
    raw = text.strip().upper().removeprefix("%").replace(" ", "")
    db_match = _DB.fullmatch(raw)
    if db_match:
        area, db, width, byte, bit = "DB", int(db_match.group(1)), db_match.group(2), db_match.group(3), db_match.group(4)
        if not 1 <= db <= 65535:
            raise ValueError(f"a data block number 1..65535 in {text!r}")
    else:
        other = _OTHER.fullmatch(raw)
        if other is None:
            raise ValueError(SYNTAX)
        area, db, byte, bit = _AREA_ALIASES.get(other.group(1), other.group(1)), 0, other.group(3), other.group(4)
        width = other.group(2) or "X"
    if (width == "X") != (bit is not None):
        raise ValueError(f"a bit address as <byte>.<bit> (e.g. DB10.DBX4.2, M4.2) only with X or no width letter; {SYNTAX}")
    bit_no = int(bit) if bit is not None else 0
    if bit_no > 7:
        raise ValueError(f"a bit number 0..7 in {text!r}")
    if type_name is None:
        if width in ("W", "D"):
            raise ValueError(f"'type:' for {text!r}: one of {', '.join(_WIDTH_TYPES[width])} (or LREAL, STRING[n])")
        type_name = "BOOL" if width == "X" else "BYTE"
    base = "STRING" if type_name.startswith("STRING") else type_name
    if base not in _WIDTH_TYPES[width] and not (base in _ANY_START and width != "X"):
        fits = ", ".join(_WIDTH_TYPES[width]) + ("" if width == "X" else ", LREAL, STRING[n]")
        raise ValueError(f"an address that fits type {type_name}: {text!r} holds {fits}")
    size = type_size(type_name)
    if int(byte) + size - 1 > MAX_BYTE:
        raise ValueError(f"a byte offset up to {MAX_BYTE - size + 1} for a {type_name}")
    return S7Location(area, db, int(byte), bit_no, type_name, size, text.strip())
