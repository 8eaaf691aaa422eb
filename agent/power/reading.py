"""One reading of the power situation, whatever the source (UPS daemon or power-good line)."""

from __future__ import annotations

from dataclasses import dataclass

#: Power states recorded in the run state and in health.
MAINS, ON_BATTERY, LOW_BATTERY, UNKNOWN = "mains", "on_battery", "low_battery", "unknown"


class PowerSourceError(Exception):
    """The source could not be read or said something unusable; the message is for a person."""


@dataclass(frozen=True)
class PowerReading:
    """Mains present or not, and how long the battery has left when the source knows."""

    on_line: bool
    low_battery: bool = False
    forced_shutdown: bool = False
    charge: float | None = None
    runtime_s: float | None = None
    status: str = ""

    @property
    def state(self) -> str:
        """``low_battery`` only while off mains (OL LB is a UPS recharging, not a failing supply)."""
        if self.forced_shutdown or (self.low_battery and not self.on_line):
            return LOW_BATTERY
        return MAINS if self.on_line else ON_BATTERY


def parse_ups_status(status: str) -> PowerReading:
    """NUT ``ups.status`` flags (``OL``, ``OB``, ``LB``, ``FSD``; others ignored) → a reading."""
    flags = set(status.split())
    if "FSD" in flags:
        return PowerReading(on_line="OL" in flags, low_battery=True, forced_shutdown=True, status=status)
    if flags == {"WAIT"}:
        raise PowerSourceError("upsd has no data from the UPS driver yet (ups.status WAIT)")
    if "OL" not in flags and "OB" not in flags:
        raise PowerSourceError(
            f"ups.status is {status!r}: neither OL (on line) nor OB (on battery); the UPS driver may not be talking to the UPS"
        )
    return PowerReading(on_line="OL" in flags and "OB" not in flags, low_battery="LB" in flags, status=status)


def number(value: str | None) -> float | None:
    """A NUT numeric variable, or None when absent or not a number (some UPSes report 'unknown')."""
    if value is None:
        return None
    try:
        n = float(value)
    except ValueError:
        return None
    return int(n) if n.is_integer() else n
