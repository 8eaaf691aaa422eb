"""Local dates and shifts for the site rules: which state a section is declared in, which shift runs.

Approvals and declarations are written in the mine's local calendar (``rules.site.timezone``),
while records carry UTC epoch seconds; this is the one place that converts.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from config.rules.site import Period, SectionSettings, Shift


class Calendar:
    """Epoch seconds → local date/time in the site's time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = zoneinfo.ZoneInfo(timezone)

    def local(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.zone)

    def declared(self, section: SectionSettings, ts: float) -> str:
        """The section's declared state at ``ts``: the schedule period covering the day, else ``state``."""
        day = self.local(ts).date()
        period = covering(section.schedule, day)
        return period.state if period else section.state

    def shift(self, shifts: Sequence[Shift], ts: float) -> tuple[str, dt.date] | None:
        """The running shift's name and the local date it started on (a night shift belongs to its start day)."""
        now = self.local(ts)
        t = now.time()
        for s in shifts:
            if s.start <= s.end:
                if s.start <= t < s.end:
                    return s.name, now.date()
            elif t >= s.start:
                return s.name, now.date()
            elif t < s.end:
                return s.name, now.date() - dt.timedelta(days=1)
        return None


def covering(periods: Sequence[Period], day: dt.date) -> Period | None:
    for p in periods:
        if p.start <= day <= p.until:
            return p
    return None
