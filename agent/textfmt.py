"""Durations in the words an inspector reads (gap records, alarms, verify reports)."""

from __future__ import annotations


def human_duration(seconds: float | None) -> str:
    """``2 d 3 h 12 min``, ``3 h 12 min``, ``4 min 5 s``, ``12 s``; ``unknown duration`` for None."""
    if seconds is None:
        return "unknown duration"
    s = round(max(seconds, 0))
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
