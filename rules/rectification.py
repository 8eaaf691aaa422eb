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
        # a seal alarm is suppressed only where the bare camera is an approved place
        self.cameras = {p.partition(".")[0] for p in self.places}
        self.counts: dict[str, tuple[int, float]] = {}  # camera.zone → (people, ts)
        self.raised: dict[str, dict[str, Any]] = {}  # alarm id → what raised it

    def active(self, ts: float) -> RectificationWindow | None:
        """The first window approved at ``ts`` (date and shift), if any (see :meth:`active_all`)."""
        wins = self.active_all(ts)
        return wins[0] if wins else None

    def active_all(self, ts: float) -> list[RectificationWindow]:
        """Every window approved at ``ts``: each is enforced (limits, totals, suppression)."""
        day = self.cal.local(ts).date()
        running = self.cal.shift(self.site.shifts, ts)
        wins: list[RectificationWindow] = []
        for w in self.site.rectification:
            if not w.shifts:
                if w.start <= day <= w.until:
                    wins.append(w)
            elif running is not None and running[0] in w.shifts and w.start <= running[1] <= w.until:
                wins.append(w)
        return wins

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
            win = next((w for w in self.active_all(rec.ts) if rec.source in w.places), None)
            if win is not None and isinstance(p.get("objects"), int):
                # a seal camera approved as a place is counted too: the objects (people and
                # vehicles) its latest breach saw — approved work still has its limit
                self.counts[rec.source] = (p["objects"], rec.ts)
            if win is not None:
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
                            "place": rec.source,
                            "text": f"Seal alarm on {rec.source} is approved rectification work ({win.name}).",
                        },
                        ts=rec.ts,
                    )
                )

    def _evaluate(self, now: float, out: list[Record]) -> None:
        """Every active window's limits. A raised alarm whose count became unknown (camera
        silent for ``max_age``) stays raised, marked unknown: silence is not "back within"."""
        wins = self.active_all(now)
        want: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
        unknown: dict[str, list[str]] = {}  # raised alarm id -> its places whose count is unknown
        for win in wins:
            fresh = {p: n for p, (n, ts) in self.counts.items() if p in win.places and now - ts <= self.max_age}
            silent = sorted(p for p in win.places if p in self.counts and p not in fresh)
            for place, n in fresh.items():
                if n > win.max_per_place:
                    aid = f"rectification:place_over_limit:{place}"
                    want.setdefault(
                        aid,
                        (
                            "place_over_limit",
                            place,
                            f"{n} people in {place}, at most {win.max_per_place} allowed during rectification {win.name}.",
                            {"window": win.name, "place": place, "count": n, "limit": win.max_per_place},
                        ),
                    )
            for place in silent:
                aid = f"rectification:place_over_limit:{place}"
                if aid in self.raised:
                    unknown[aid] = [place]
            total = sum(fresh.values())
            aid = f"rectification:shift_over_limit:{win.name}"
            if win.max_per_shift is not None and total > win.max_per_shift:
                want[aid] = (
                    "shift_over_limit",
                    win.name,
                    f"{total} people in the places of rectification {win.name}, at most {win.max_per_shift} allowed per shift.",
                    {"window": win.name, "count": total, "limit": win.max_per_shift, "places": fresh},
                )
            elif aid in self.raised and silent:
                unknown[aid] = silent
        for aid, (kind, subject, text, ev) in want.items():
            if aid not in self.raised:
                self.raised[aid] = {"kind": kind, "subject": subject}
                out.append(alarm("rectification", kind, subject, "raised", "immediate", text, now, ev))
            elif self.raised[aid].pop("unknown", None):
                out.append(self._unknown_event(aid, now, [], known=True))
        for aid, places in unknown.items():
            if aid in want:
                continue
            if not self.raised[aid].get("unknown"):
                self.raised[aid]["unknown"] = places
                out.append(self._unknown_event(aid, now, places, known=False))
        for aid in [a for a in self.raised if a not in want and a not in unknown]:
            gone = self.raised.pop(aid)
            out.append(
                alarm(
                    "rectification",
                    gone["kind"],
                    gone["subject"],
                    "cleared",
                    "immediate",
                    f"{gone['subject']}: back within the rectification limit" + ("" if wins else " (window ended)") + ".",
                    now,
                )
            )

    def _unknown_event(self, aid: str, now: float, places: list[str], *, known: bool) -> Record:
        """The raised alarm's count went unknown (kept raised), or is known again."""
        subject = self.raised[aid]["subject"]
        if known:
            text = f"{subject}: people count known again; the alarm stands on it."
        else:
            text = f"{subject}: count unknown: camera silent ({', '.join(places)}); the alarm stays raised."
        payload = {"event": "rectification_count", "id": aid, "unknown": not known, "places": places, "text": text}
        return Record(subject, Kind.EVENT, payload, ts=now)

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
