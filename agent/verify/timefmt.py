"""Times and durations as an inspector reads them (no milliseconds, explicit UTC)."""

from __future__ import annotations


def when(iso: str | None) -> str:
    """'2026-11-24T10:00:00.123Z' -> '2026-11-24 10:00:00 UTC' (an inspector does not need ms)."""
    if not iso:
        return "unknown time"
    return str(iso).replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown duration"
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d} d {h} h {m} min"
    if h:
        return f"{h} h {m} min"
    if m:
        return f"{m} min {sec} s"
    return f"{sec} s"
