""" "Stopped on paper, secretly running": a section declared stopped must show no activity.

Expected loads (drainage pumps, main fans, lighting) keep running in a stopped mine and raise
nothing; any activity signal (power above its threshold, a PLC run bit, a belt running on camera,
a seal alarm) raises ONE alarm per section that carries the evidence together: the readings that
crossed, the PLC states, and a copy of the latest picture each seal camera sent in any record
(docs/rules.md says what "latest" means and what vision sends). It clears only
after ``clear_after`` without activity (hysteresis). A section with no known input is "unknown".

Seal pictures (JPEG bytes) are kept in memory only, never in ``snapshot()``: after a restart the
evidence names the seq and time of the record that carried the picture instead of attaching it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buffer.record import Attachment, Committed, Kind, Record
from config.rules.site import SectionSettings
from config.schema import Settings
from rules.base import Rule
from rules.belt import BeltScaleRule
from rules.opstate import OperatingStateRule
from rules.points import PointCache, alarm, iso
from rules.rectification import RectificationRule, suppressed_seqs
from rules.schedule import Calendar

WATCHED = ("stopped", "suspended", "sealed")


class SecretlyRunningRule:
    """One section: declared state (config + schedule) against observed activity."""

    def __init__(self, section: SectionSettings, calendar: Calendar) -> None:
        self.sec, self.cal = section, calendar
        self.name = f"secretly_running:{section.name}"
        act = section.activity
        self.points = PointCache(
            [s.point for s in act.power] + list(act.run_bits) + list(section.expected_loads), section.max_age
        )
        self.belts: dict[str, tuple[bool, float]] = {}  # camera → (running, ts)
        self.seals: dict[str, dict[str, Any]] = {}  # camera → last seal alarm (seq, ts, objects, classes)
        self.seal_seen: dict[str, float] = {}  # camera → last record ts (alive)
        self.pictures: dict[str, tuple[Attachment, ...]] = {}  # camera → latest JPEG, memory only
        self.picture_from: dict[str, dict[str, Any]] = {}  # camera → the record that carried it (seq, ts, what)
        self.observed = "unknown"
        self.declared = ""
        self.raised = False
        self.quiet_since: float | None = None

    # --- inputs -------------------------------------------------------------------------------
    def _take(self, c: Committed, approved: set[int]) -> None:
        rec, act = c.record, self.sec.activity
        self.points.feed(rec)
        if rec.source in act.belt_cameras:
            if rec.kind is Kind.EVENT and rec.payload.get("event") == "belt_state":
                self.belts[rec.source] = (rec.payload.get("state") == "running", rec.ts)
            elif rec.kind is Kind.TELEMETRY and isinstance(rec.payload.get("belt"), dict):
                running = rec.payload["belt"].get("running")
                if isinstance(running, bool):
                    self.belts[rec.source] = (running, rec.ts)
        if rec.source in act.seal_cameras:
            self.seal_seen[rec.source] = rec.ts
            if rec.kind is Kind.ALARM and rec.payload.get("alarm") == "seal_breach" and c.seq not in approved:
                self.seals[rec.source] = {
                    "seq": c.seq,
                    "ts": rec.ts,
                    "objects": rec.payload.get("objects"),
                    "classes": rec.payload.get("classes"),
                }
            # the latest picture, from ANY record of the camera (an approved seal alarm's too)
            jpegs = tuple(a for a in rec.attachments if a.content_type == "image/jpeg")
            if jpegs:
                snap = [a for a in jpegs if a.name == "snapshot.jpg"] or list(jpegs[:1])
                self.pictures[rec.source] = tuple(snap)
                what = rec.payload.get("alarm") or rec.payload.get("event") or ""
                self.picture_from[rec.source] = {
                    "seq": c.seq,
                    "ts": rec.ts,
                    "record": f"{rec.kind.value}:{what}" if what else rec.kind.value,
                    **({"approved": True} if c.seq in approved else {}),
                }

    def _signals(self, now: float) -> tuple[list[dict[str, Any]], bool]:
        """Active activity signals, and whether any activity input is known at all."""
        act, sec = self.sec.activity, self.sec
        active: list[dict[str, Any]] = []
        known = False
        for sig in act.power:
            v = self.points.value(sig.point, now)
            if isinstance(v, int | float) and not isinstance(v, bool):
                known = True
                if v > sig.above:
                    active.append({"signal": "power", "above": sig.above, **self.points.reading(sig.point, now)})
        for ref in act.run_bits:
            v = self.points.value(ref, now)
            if v is not None:
                known = True
                if bool(v):
                    active.append({"signal": "run_bit", **self.points.reading(ref, now)})
        for cam in act.belt_cameras:
            got = self.belts.get(cam)
            if got is not None and now - got[1] <= sec.max_age + sec.clear_after:
                known = True
                if got[0]:
                    active.append({"signal": "belt_running", "camera": cam, "ts": iso(got[1])})
        for cam in act.seal_cameras:
            seen = self.seal_seen.get(cam)
            if seen is not None and now - seen <= sec.max_age:
                known = True
            last = self.seals.get(cam)
            if last is not None and now - last["ts"] <= sec.seal_hold:
                known = True
                active.append({"signal": "seal_alarm", "camera": cam, "alarm_seq": last["seq"], "ts": iso(last["ts"])})
        return active, known

    # --- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, now: float) -> list[Record]:
        out: list[Record] = []
        declared = self.cal.declared(self.sec, now)
        active, known = self._signals(now)
        observed = "activity" if active else ("quiet" if known else "unknown")
        watched = declared in WATCHED
        # events only while watched (an operating mine's hoist stops and starts all day), and at each change of paper
        if (observed != self.observed and watched) or declared != self.declared:
            previous, self.observed, self.declared = self.observed, observed, declared
            out.append(
                Record(
                    self.sec.name,
                    Kind.EVENT,
                    {
                        "event": "site_activity",
                        "section": self.sec.name,
                        "declared": declared,
                        "observed": observed,
                        "previous": previous,
                        "signals": [s["signal"] for s in active],
                    },
                    ts=now,
                )
            )
        self.observed = observed
        if active and watched:
            self.quiet_since = None
            if not self.raised:
                self.raised = True
                out.append(self._raise(declared, active, now))
        elif self.raised:
            if not watched:
                self.raised, self.quiet_since = False, None
                out.append(self._clear(declared, now, f"section {self.sec.name} is declared {declared}"))
            elif observed == "quiet":
                self.quiet_since = now if self.quiet_since is None else self.quiet_since
                if now - self.quiet_since >= self.sec.clear_after:
                    self.raised, self.quiet_since = False, None
                    out.append(self._clear(declared, now, f"no activity for {int(self.sec.clear_after)} s"))
            else:
                self.quiet_since = None  # unknown is not quiet: keep the alarm
        return out

    def _raise(self, declared: str, active: list[dict[str, Any]], now: float) -> Record:
        act = self.sec.activity
        seals: list[dict[str, Any]] = []
        attachments: list[Attachment] = []
        for cam in act.seal_cameras:
            last = self.seals.get(cam)
            entry: dict[str, Any] = {"camera": cam, "last_seal_alarm": None}
            if last is not None:
                entry["last_seal_alarm"] = {
                    "seq": last["seq"],
                    "ts": iso(last["ts"]),
                    "objects": last["objects"],
                    "classes": last["classes"],
                }
            got = self.picture_from.get(cam)
            pics = self.pictures.get(cam, ())
            # None: this camera sent no picture (since it was configured), or it was not kept across a restart
            entry["snapshot"] = [f"{cam}-{a.name}" for a in pics] or None
            entry["snapshot_from"] = {**got, "ts": iso(got["ts"])} if got else None
            attachments += [Attachment(f"{cam}-{a.name}", a.content_type, a.data) for a in pics]
            seals.append(entry)
        evidence = {
            "declared": declared,
            "power": [s for s in active if s["signal"] == "power"],
            "plc": [self.points.reading(r, now) for r in act.run_bits],
            "belt": [
                {"camera": c, "running": self.belts[c][0], "ts": iso(self.belts[c][1])}
                for c in act.belt_cameras
                if c in self.belts
            ],
            "seal_cameras": seals,
            "expected_loads": [self.points.reading(r, now) for r in self.sec.expected_loads],
        }
        what = ", ".join(sorted({_words(s) for s in active}))
        rec = alarm(
            "site",
            "secretly_running",
            self.sec.name,
            "raised",
            "immediate",
            f"Section {self.sec.name} is declared {declared} but shows activity: {what}.",
            now,
            evidence,
        )
        rec.attachments = tuple(attachments)
        return rec

    def _clear(self, declared: str, now: float, why: str) -> Record:
        return alarm(
            "site",
            "secretly_running",
            self.sec.name,
            "cleared",
            "immediate",
            f"Section {self.sec.name}: activity ended ({why}).",
            now,
            {"declared": declared},
        )

    # --- Rule ---------------------------------------------------------------------------------
    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        approved = suppressed_seqs(batch)  # approved rectification work at a seal is not activity
        for c in batch:
            self._take(c, approved)
        return self._evaluate(now)

    def tick(self, now: float) -> list[Record]:
        return self._evaluate(now)

    def snapshot(self) -> dict[str, Any]:
        return {
            "points": self.points.snapshot(),
            "belts": {k: list(v) for k, v in self.belts.items()},
            "seals": self.seals,
            "seal_seen": self.seal_seen,
            "picture_from": self.picture_from,
            "observed": self.observed,
            "declared": self.declared,
            "raised": self.raised,
            "quiet_since": self.quiet_since,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.points.restore(snapshot.get("points", {}))
        self.belts = {k: (bool(v[0]), float(v[1])) for k, v in snapshot.get("belts", {}).items()}
        self.seals = dict(snapshot.get("seals", {}))
        self.seal_seen = {k: float(v) for k, v in snapshot.get("seal_seen", {}).items()}
        self.picture_from = dict(snapshot.get("picture_from", {}))
        self.observed = snapshot.get("observed", "unknown")
        self.declared = snapshot.get("declared", "")
        self.raised = bool(snapshot.get("raised", False))
        self.quiet_since = snapshot.get("quiet_since")


def _words(signal: dict[str, Any]) -> str:
    kind = signal["signal"]
    if kind == "power":
        return f"{signal['point']} at {signal.get('v')} {signal.get('unit', '')}".rstrip()
    if kind == "run_bit":
        return f"{signal['point']} running"
    if kind == "belt_running":
        return f"belt running on camera {signal['camera']}"
    return f"seal alarm on camera {signal['camera']}"


def build(settings: Settings) -> list[Rule]:
    """The site rules the config asks for, in order: operating state, rectification, sections, belt
    scales (rectification before the sections: they must see which seal alarms it suppressed)."""
    site = settings.rules.site
    out: list[Rule] = []
    if settings.operating_state.enabled:
        out.append(OperatingStateRule(settings.operating_state))
    if site.sections or site.rectification:  # only these read local dates (no time zone lookup otherwise)
        cal = Calendar(site.timezone)
        if site.rectification:
            out.append(RectificationRule(site, cal))
        out += [SecretlyRunningRule(sec, cal) for sec in site.sections]
    out += [BeltScaleRule(b) for b in site.belt_scales]
    return out
