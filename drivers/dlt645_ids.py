"""DL/T 645-2007 data identifiers Headframe reads, with their BCD formats (Appendix A)."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.dlt645 import di_bytes
from drivers.errors import BadFrame, Unsupported


@dataclass(frozen=True)
class DataFormat:
    name: str
    nbytes: int
    decimals: int
    unit: str
    signed: bool = False  # highest bit of the most significant byte is the sign


_ENERGY = ("energy", 4, 2, "kWh")
FORMATS: dict[str, DataFormat] = {
    "00000000": DataFormat("energy combined total", 4, 2, "kWh"),
    "00010000": DataFormat("energy forward active total", 4, 2, "kWh"),
    "00020000": DataFormat("energy reverse active total", 4, 2, "kWh"),
    "00030000": DataFormat("energy combined reactive 1 total", 4, 2, "kvarh"),
    "02800002": DataFormat("grid frequency", 2, 2, "Hz"),
}
for phase, code in (("A", "01"), ("B", "02"), ("C", "03")):
    FORMATS[f"0201{code}00"] = DataFormat(f"voltage {phase}", 2, 1, "V")
    FORMATS[f"0202{code}00"] = DataFormat(f"current {phase}", 3, 3, "A", signed=True)
    FORMATS[f"0001{code}00"] = DataFormat(f"energy forward active tariff {int(code)}", 4, 2, "kWh")
for code, label in (("00", "total"), ("01", "A"), ("02", "B"), ("03", "C")):
    FORMATS[f"0203{code}00"] = DataFormat(f"active power {label}", 3, 4, "kW", signed=True)
    FORMATS[f"0204{code}00"] = DataFormat(f"reactive power {label}", 3, 4, "kvar", signed=True)
    FORMATS[f"0205{code}00"] = DataFormat(f"apparent power {label}", 3, 4, "kVA", signed=True)
    FORMATS[f"0206{code}00"] = DataFormat(f"power factor {label}", 2, 3, "", signed=True)


def bcd_decode(raw: bytes, decimals: int, signed: bool) -> float:
    """Little-endian BCD bytes → value; raises BadFrame on a non-BCD nibble."""
    digits = []
    negative = False
    for i, byte in enumerate(reversed(raw)):
        if i == 0 and signed:
            negative = bool(byte & 0x80)
            byte &= 0x7F
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            raise BadFrame(f"garbage: byte 0x{byte:02X} is not BCD")
        digits.append(hi * 10 + lo)
    value = 0
    for pair in digits:
        value = value * 100 + pair
    result = value / (10**decimals)
    return -result if negative else result


def bcd_encode(value: float, nbytes: int, decimals: int, signed: bool) -> bytes:
    scaled = round(abs(value) * 10**decimals)
    text = f"{scaled:0{nbytes * 2}d}"[-nbytes * 2 :]
    out = bytearray(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
    if signed and value < 0:
        out[0] |= 0x80
    return bytes(reversed(out))


def decode_value(di: str, data: bytes) -> float:
    """Value of a normal read answer's data (DI + value bytes)."""
    fmt = FORMATS.get(di.upper())
    if fmt is None:
        raise Unsupported(f"data identifier {di} has no known format (see drivers/dlt645_ids.py)")
    if data[:4] != di_bytes(di):
        raise BadFrame(f"garbage: answer is for another data identifier ({data[:4][::-1].hex()})")
    value = data[4:]
    if len(value) < fmt.nbytes:
        raise BadFrame(f"garbage: {len(value)} value bytes, format needs {fmt.nbytes}")
    return bcd_decode(value[: fmt.nbytes], fmt.decimals, fmt.signed)
