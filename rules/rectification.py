"""Rectification mode: approved windows allow limited work in named places of a stopped mine.

During an approved window (local dates and shifts) at most ``max_per_place`` people may be in
each approved place and at most ``max_per_shift`` in all of them together; each excess is an
alarm. A seal alarm from an approved place inside the window is suppressed, and every
suppression is itself an event (the alarm manager treats the matching seal alarm as approved
work). Outside every window nothing is suppressed: a seal alarm stands as a breach.

People counts come from the cameras' committed records: the periodic camera telemetry
(``zones: {name: {count}}``) and the zone occupancy alarm/clear payloads (``zone``, ``count``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record
from config.rules.site import RectificationWindow, SiteRules
from rules.points import alarm, iso
from rules.schedule import Calendar

SUPPRESSED = "seal_alarm_suppressed"


def suppressed_seqs(batch: Sequence[Committed]) -> set[int]:
    """Seqs of the seal alarms this rule suppressed in ``batch`` (its events come after them in
    the same commit): rules after it treat those alarms as approved work, not as activity."""
    return {
        c.record.payload["alarm_seq"]
        for c in batch
        if c.record.kind is Kind.EVENT
        and c.record.payload.get("event") == SUPPRESSED
        and isinstance(c.record.payload.get("alarm_seq"), int)
    }


class RectificationRule:
    """Counts per approved place against the window's limits; suppresses approved seal alarms."""

    name = "rectification"

    def __init__(self, site: SiteRules, calendar: Calendar, max_age: float = 120.0) -> None:
        self.site, self.cal, self.max_age = site, calendar, max_age
        self.places = {p for w in site.rectification for p in w.places}
        self.cameras = {p.partition(".")[0] for p in self.places}
        self.counts: dict[str, tuple[int, float]] = {}  # camera.zone → (people, ts)
        self.raised: dict[str, dict[str, Any]] = {}  # alarm id → what raised it

    def active(self, ts: float) -> RectificationWindow | None:
        """The window approved at ``ts`` (date and shift), if any."""
        day = self.cal.local(ts).date()
        running = self.cal.shift(self.site.shifts, ts)
        for w in self.site.rectification:
            if not w.shifts:
                if w.start <= day <= w.until:
                    return w
            elif running is not None and running[0] in w.shifts and w.start <= running[1] <= w.until:
                return w
        return None

    def _take(self, c: Committed, out: list[Record]) -> None:
        rec = c.record
        if rec.source not in self.cameras:
            return
        p = rec.payload
        if rec.kind is Kind.TELEMETRY and isinstance(p.get("zones"), dict):
            for zone, z in p["zones"].items():
                if isinstance(z, dict) and isinstance(z.get("count"), int):
                    self.counts[f"{rec.source}.{zone}"] = (z["count"], rec.ts)
        elif (
            isinstance(p.get("zone"), str)
            and isinstance(p.get("count"), int)
            and (p.get("alarm") == "occupancy_limit" or p.get("event") == "occupancy_clear")
        ):
            self.counts[f"{rec.source}.{p['zone']}"] = (p["count"], rec.ts)
        elif rec.kind is Kind.ALARM and p.get("alarm") == "seal_breach":
            win = self.active(rec.ts)
            place = self._place_of(rec.source, win)
            if win is not None and place is not None:
                out.append(
                    Record(
                        rec.source,
                        Kind.EVENT,
                        {
                            "event": SUPPRESSED,
                            "camera": rec.source,
                            "alarm_seq": c.seq,
                            "alarm_ts": iso(rec.ts),
                            "window": win.name,
                            "place": place,
                            "text": f"Seal alarm on {rec.source} is approved rectification work ({win.name}).",
                        },
                        ts=rec.ts,
                    )
                )

    @staticmethod
    def _place_of(camera: str, win: RectificationWindow | None) -> str | None:
        if win is None:
            return None
        for p in win.places:
            if p.partition(".")[0] == camera:
                return p
        return None

    def _evaluate(self, now: float, out: list[Record]) -> None:
        win = self.active(now)
        want: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
        if win is not None:
            fresh = {p: n for p, (n, ts) in self.counts.items() if p in win.places and now - ts <= self.max_age}
            for place, n in fresh.items():
                if n > win.max_per_place:
                    aid = f"rectification:place_over_limit:{place}"
                    want[aid] = (
                        "place_over_limit",
                        place,
                        f"{n} people in {place}, at most {win.max_per_place} allowed during rectification {win.name}.",
                        {"window": win.name, "place": place, "count": n, "limit": win.max_per_place},
                    )
            total = sum(fresh.values())
            if win.max_per_shift is not None and total > win.max_per_shift:
                aid = f"rectification:shift_over_limit:{win.name}"
                want[aid] = (
                    "shift_over_limit",
                    win.name,
                    f"{total} people in the places of rectification {win.name}, at most {win.max_per_shift} allowed per shift.",
                    {"window": win.name, "count": total, "limit": win.max_per_shift, "places": fresh},
                )
        for aid, (kind, subject, text, ev) in want.items():
            if aid not in self.raised:
                self.raised[aid] = {"kind": kind, "subject": subject}
                out.append(alarm("rectification", kind, subject, "raised", "immediate", text, now, ev))
        for aid in [a for a in self.raised if a not in want]:
            gone = self.raised.pop(aid)
            out.append(
                alarm(
                    "rectification",
                    gone["kind"],
                    gone["subject"],
                    "cleared",
                    "immediate",
                    f"{gone['subject']}: back within the rectification limit" + ("" if win else " (window ended)") + ".",
                    now,
                )
            )

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out: list[Record] = []
        for c in batch:
            self._take(c, out)
        self._evaluate(now, out)
        return out

    def tick(self, now: float) -> list[Record]:
        out: list[Record] = []
        self._evaluate(now, out)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"counts": {k: list(v) for k, v in self.counts.items()}, "raised": self.raised}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.counts = {k: (int(v[0]), float(v[1])) for k, v in snapshot.get("counts", {}).items()}
        self.raised = dict(snapshot.get("raised", {}))
