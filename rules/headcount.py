"""People underground per shaft: in − out over every camera line that feeds the shaft.

The one headcount of a shaft. Camera workers only report ``line_crossing`` events; this rule
sums the committed ones of all the shaft's cameras, so a worker restart, an agent restart or a
power cut can neither lose nor double a person: the engine saves ``snapshot()`` in the same
transaction that commits the crossings, and a crossing is counted once by its seq.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from buffer.record import Committed, Kind, Record
from config.rules.headcount import ExternalCount, HeadcountRules
from config.vision import ShaftSettings
from rules.headcount_state import ShaftState, alarm, last_boundary

NAME = "headcount"


class HeadcountRule:
    """A pure state machine over committed records (see ``rules.base.Rule``)."""

    name = NAME

    def __init__(
        self, shafts: Sequence[ShaftSettings], lines: Mapping[tuple[str, str], str], settings: HeadcountRules | None = None
    ) -> None:
        """``lines`` maps (camera id, line name) to the shaft the line feeds."""
        self.settings = settings or HeadcountRules()
        self.tz = ZoneInfo(self.settings.timezone) if self.settings.timezone else None
        self.shafts = {s.name: s for s in shafts}
        self.lines = {k: v for k, v in lines.items() if v in self.shafts}
        self.external: dict[str, ExternalCount] = {e.shaft: e for e in self.settings.external if e.shaft in self.shafts}
        self.state = {name: ShaftState() for name in self.shafts}
        self.high_seq = 0  # highest seq of a crossing already counted (dedup across replays)

    # ------------------------------------------------------------------ Rule
    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out: list[Record] = self._reconcile(now)
        changed: dict[str, Committed] = {}
        for c in batch:
            rec = c.record
            if rec.kind is Kind.EVENT and rec.payload.get("event") == "line_crossing":
                shaft = self._count(c)
                if shaft:
                    changed[shaft] = c
            elif rec.kind is Kind.TELEMETRY:
                self._external_value(rec)
        for shaft, last in changed.items():
            out.append(self._headcount_event(shaft, last.record.ts, last.seq))
            out += self._limits(shaft, last.record.ts)
        for shaft in self.external:
            out += self._mismatch(shaft, now)
        return out

    def tick(self, now: float) -> list[Record]:
        out = self._reconcile(now)
        for shaft in self.external:
            out += self._mismatch(shaft, now)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"high_seq": self.high_seq, "shafts": {n: s.to_dict() for n, s in self.state.items()}}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.high_seq = int(snapshot.get("high_seq", 0))
        for name, data in snapshot.get("shafts", {}).items():
            if name in self.state:  # a shaft removed from the config is forgotten
                self.state[name] = ShaftState.from_dict(data)

    # --------------------------------------------------------------- counting
    def _count(self, c: Committed) -> str | None:
        p = c.record.payload
        shaft = self.lines.get((c.record.source, str(p.get("line"))))
        if shaft is None or p.get("class", "person") != "person" or p.get("direction") not in ("in", "out"):
            return None
        if c.seq <= self.high_seq:
            return None  # already counted (the engine replayed it, or it came twice)
        self.high_seq = c.seq
        self.state[shaft].add(c.record.source, p["direction"])
        return shaft

    def _headcount_event(self, shaft: str, ts: float, seq: int) -> Record:
        st = self.state[shaft]
        return Record(
            shaft,
            Kind.EVENT,
            {
                "event": "headcount",
                "shaft": shaft,
                "underground": st.underground,
                "in": st.total("in"),
                "out": st.total("out"),
                "cameras": {k: dict(v) for k, v in sorted(st.cameras.items())},
                "limit": self.shafts[shaft].limit,
                "last_seq": seq,
            },
            ts=ts,
        )

    def _limits(self, shaft: str, ts: float) -> list[Record]:
        st, limit = self.state[shaft], self.shafts[shaft].limit
        n, out = st.underground, []
        over = n > limit if "over_limit" not in st.raised else n > limit - self.settings.hysteresis
        neg = n < 0
        for kind, active, text in (
            ("over_limit", over, f"{n} people underground in {shaft}, more than the limit of {limit}"),
            (
                "negative",
                neg,
                f"the count of people underground in {shaft} is {n}: more counted out than in; check the shaft cameras",
            ),
        ):
            if active != (kind in st.raised):
                st.set_raised(kind, active)
                words = text if active else f"{n} people underground in {shaft}: back to normal ({kind} cleared)"
                out.append(
                    alarm(
                        shaft,
                        kind,
                        active,
                        words,
                        {"underground": n, "limit": limit, "in": st.total("in"), "out": st.total("out")},
                        ts,
                    )
                )
        return out

    # ----------------------------------------------------------- reconciling
    def _reconcile(self, now: float) -> list[Record]:
        out: list[Record] = []
        for name, shaft in self.shafts.items():
            st = self.state[name]
            due = last_boundary(now, shaft.reconcile_at, self.tz)
            if st.reconciled_at is None or st.reconciled_at > now + 2 * 86400:
                st.reconciled_at = due  # first start, or it was done under a clock far in the future
                continue
            if due <= st.reconciled_at:
                continue
            found = st.underground
            local = datetime.fromtimestamp(due, self.tz).isoformat()
            out.append(
                Record(
                    name,
                    Kind.EVENT,
                    {
                        "event": "headcount_reconciled",
                        "shaft": name,
                        "found": found,
                        "in": st.total("in"),
                        "out": st.total("out"),
                        "cameras": {k: dict(v) for k, v in sorted(st.cameras.items())},
                        "at": local,
                    },
                    ts=now,
                )
            )
            evidence = {"found": found, "at": local}
            for kind in sorted(st.raised - {"not_zero_at_reconcile", "mismatch"}):
                st.set_raised(kind, False)
                out.append(alarm(name, kind, False, f"{name}: count reset to 0 at the daily reconciliation", evidence, now))
            if (found != 0) != ("not_zero_at_reconcile" in st.raised):
                st.set_raised("not_zero_at_reconcile", found != 0)
                text = (
                    f"{found} people still counted underground in {name} at the daily reconciliation "
                    f"({local}); check against the lamp room"
                    if found
                    else f"{name}: nobody counted underground at the daily reconciliation ({local})"
                )
                out.append(alarm(name, "not_zero_at_reconcile", found != 0, text, evidence, now))
            st.reset(due)
            out.append(self._headcount_event(name, now, self.high_seq))
        return out

    # ------------------------------------------------------- external count
    def _external_value(self, rec: Record) -> None:
        for shaft, ext in self.external.items():
            if rec.source != ext.feed_source:  # a device, or the uplink's MQTT count (``pps-<shaft>``)
                continue
            entry = rec.payload.get("values", {}).get(ext.feed_point)
            if not isinstance(entry, dict):
                continue
            v, good = entry.get("v"), entry.get("q") == "good"
            if good and isinstance(v, int | float) and not isinstance(v, bool):
                self.state[shaft].external = (float(v), rec.ts)
            else:
                self.state[shaft].external = None

    def _mismatch(self, shaft: str, now: float) -> list[Record]:
        ext, st = self.external[shaft], self.state[shaft]
        value = st.external if st.external and now - st.external[1] <= ext.max_age else None
        if value is None:  # unknown: never compared; a pending mismatch starts again
            st.mismatch_since = None
            if "mismatch" in st.raised and not st.external_unknown:
                # a raised mismatch stays raised (silence is not agreement), and says so once
                st.external_unknown = True
                return [self._external_event(shaft, ext, now, unknown=True)]
            return []
        if st.external_unknown:
            st.external_unknown = False
            back = [self._external_event(shaft, ext, now, unknown=False)]
        else:
            back = []
        return back + self._compare(shaft, ext, st, value, now)

    def _external_event(self, shaft: str, ext: ExternalCount, now: float, *, unknown: bool) -> Record:
        text = (
            f"{shaft}: positioning system count unknown (no fresh value for {timedelta(seconds=round(ext.max_age))}); "
            "the mismatch alarm stays raised"
            if unknown
            else f"{shaft}: positioning system count known again"
        )
        return Record(
            shaft,
            Kind.EVENT,
            {"event": "external_count", "shaft": shaft, "unknown": unknown, "source": ext.feed_source, "text": text},
            ts=now,
        )

    def _compare(self, shaft: str, ext: ExternalCount, st: ShaftState, value: tuple[float, float], now: float) -> list[Record]:
        diff = st.underground - value[0]
        beyond = abs(diff) > ext.tolerance
        raised = "mismatch" in st.raised
        evidence = {
            "underground": st.underground,
            "external": value[0],
            "difference": diff,
            "tolerance": ext.tolerance,
            "device": ext.feed_source,
            "point": ext.feed_point,
        }
        if ext.mqtt is not None:
            evidence["topic"] = ext.mqtt.topic
        if not beyond:
            st.mismatch_since = None
            if raised:
                st.set_raised("mismatch", False)
                return [
                    alarm(
                        shaft,
                        "mismatch",
                        False,
                        f"{shaft}: cameras and the positioning system agree again ({st.underground} vs {value[0]:g})",
                        evidence,
                        now,
                    )
                ]
            return []
        if raised:
            return []
        st.mismatch_since = st.mismatch_since if st.mismatch_since is not None else now
        if now - st.mismatch_since < ext.for_:
            return []
        st.set_raised("mismatch", True)
        evidence["since_s"] = round(now - st.mismatch_since, 1)
        return [
            alarm(
                shaft,
                "mismatch",
                True,
                f"{shaft}: cameras count {st.underground} underground, the "
                f"positioning system {value[0]:g}, for {timedelta(seconds=round(now - st.mismatch_since))}",
                evidence,
                now,
            )
        ]


def build(settings: Any) -> list[HeadcountRule]:
    """The rule for ``settings`` (a ``config.schema.Settings``), or nothing without counted shafts."""
    # disabled cameras too: what one committed before it was switched off still counts
    lines = {(cam.id, line.name): line.shaft for cam in settings.cameras for line in cam.lines if line.shaft}
    if not settings.shafts or not lines:
        return []
    return [HeadcountRule(settings.shafts, lines, settings.rules.headcount)]
