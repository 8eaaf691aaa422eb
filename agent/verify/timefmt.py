"""Times and durations as an inspector reads them (no milliseconds, explicit UTC)."""

from __future__ import annotations

from agent.textfmt import human_duration


def when(iso: str | None) -> str:
    """'2026-11-24T10:00:00.123Z' -> '2026-11-24 10:00:00 UTC' (an inspector does not need ms)."""
    if not iso:
        return "unknown time"
    return str(iso).replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def duration(seconds: float | None) -> str:
    return human_duration(seconds)
