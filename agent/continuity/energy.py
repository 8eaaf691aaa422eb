"""Which points are energy counters, and their readings in kWh.

An energy point is recognised by its unit (kWh, Wh, MWh), in the config for the list of
meters that must answer after a start, and in each committed telemetry record
(``values.{point}.unit``) for the readings themselves. Only quality ``good`` counts: a stale
value is an old reading passed off as new, a bad one has no value.
"""

from __future__ import annotations

from typing import Any

from config.schema import Settings

#: unit (case-insensitive) -> factor to kWh
ENERGY_UNITS = {"kwh": 1.0, "wh": 0.001, "mwh": 1000.0}


def to_kwh(value: Any, unit: str | None) -> float | None:
    """The value in kWh, or None if it is not a number in an energy unit."""
    factor = ENERGY_UNITS.get((unit or "").strip().lower())
    if factor is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) * factor


def energy_readings(payload: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """From one telemetry payload: good energy readings (point -> kWh) and why others are unusable."""
    good: dict[str, float] = {}
    bad: dict[str, str] = {}
    values = payload.get("values")
    if not isinstance(values, dict):
        return good, bad
    for point, entry in values.items():
        if not isinstance(entry, dict) or (entry.get("unit") or "").strip().lower() not in ENERGY_UNITS:
            continue
        quality = entry.get("q")
        kwh = to_kwh(entry.get("v"), entry.get("unit")) if quality == "good" else None
        if kwh is not None:
            good[point] = kwh
        else:
            bad[point] = f"quality {quality}" + (f": {entry['reason']}" if entry.get("reason") else "")
    return good, bad


def configured_energy_points(settings: Settings) -> dict[str, float]:
    """Every enabled energy point as ``"device/point"`` -> its poll interval in seconds."""
    try:
        from drivers.runtime import device_points  # the profile's points merged with the device's own
    except ImportError:  # an agent built without drivers has no meters
        return {}

    points: dict[str, float] = {}
    for dev in settings.devices:
        if not dev.enabled:
            continue
        intervals = {g.name: g.interval for g in dev.groups}
        for p in device_points(dev):
            if p.unit.strip().lower() in ENERGY_UNITS:
                points[f"{dev.id}/{p.name}"] = intervals.get(p.group, dev.groups[0].interval)
    return points
