"""The headcount rule as a pure state machine: committed records in, records out, snapshot kept."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from buffer.record import Committed, Kind, Record
from config import load_settings_text
from config.errors import ConfigError
from config.rules.headcount import HeadcountRules
from config.vision import ShaftSettings
from rules.headcount import HeadcountRule, build

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=SH).timestamp()  # 09:00 site time


class Feed:
    """Hands the rule committed records with increasing seqs, as the engine would."""

    def __init__(self, rule: HeadcountRule) -> None:
        self.rule, self.seq = rule, 100
        self.out: list[Record] = []

    def commit(self, *records: Record, now: float | None = None) -> list[Record]:
        batch = []
        for r in records:
            self.seq += 1
            batch.append(Committed(self.seq, r, "c"))
        got = self.rule.apply(batch, now if now is not None else max([r.ts for r in records] + [T0]))
        self.out += got
        return got

    def tick(self, now: float) -> list[Record]:
        got = self.rule.tick(now)
        self.out += got
        return got


def crossing(cam: str, direction: str, ts: float = T0, line: str = "gate", cls: str = "person") -> Record:
    return Record(
        cam, Kind.EVENT, {"event": "line_crossing", "line": line, "direction": direction, "class": cls, "track": 1}, ts=ts
    )


def rule(
    limit: int = 5, external: list[dict] | None = None, reconcile_at: str = "06:00", tz: str = "Asia/Shanghai"
) -> HeadcountRule:
    shafts = [ShaftSettings(name="main", limit=limit, reconcile_at=reconcile_at), ShaftSettings(name="vent")]
    lines = {("cam-a", "gate"): "main", ("cam-b", "gate"): "main", ("cam-c", "gate"): "vent"}
    return HeadcountRule(shafts, lines, HeadcountRules.model_validate({"timezone": tz, "external": external or []}))


def alarms(records: list[Record], kind: str | None = None) -> list[dict]:
    return [r.payload for r in records if r.kind is Kind.ALARM and (kind is None or r.payload["alarm"] == kind)]


def counts(records: list[Record]) -> list[int]:
    return [r.payload["underground"] for r in records if r.payload.get("event") == "headcount"]


def test_sums_in_minus_out_over_the_cameras_of_a_shaft() -> None:
    r = rule(limit=50)
    f = Feed(r)
    f.commit(crossing("cam-a", "in"), crossing("cam-a", "in"), crossing("cam-b", "in"))
    f.commit(crossing("cam-b", "out"))
    f.commit(crossing("cam-c", "in"))  # another shaft
    f.commit(crossing("cam-a", "in", cls="car"), crossing("cam-x", "in"), crossing("cam-a", "in", line="other"))
    ev = [x for x in f.out if x.payload.get("event") == "headcount"]
    assert [(e.source, e.payload["underground"]) for e in ev] == [("main", 3), ("main", 2), ("vent", 1)]
    last = ev[1].payload
    assert last["in"] == 3 and last["out"] == 1
    assert last["cameras"] == {"cam-a": {"in": 2, "out": 0}, "cam-b": {"in": 1, "out": 1}}
    assert r.state["main"].underground == 2 and r.state["vent"].underground == 1


def test_duplicate_seqs_count_once_and_snapshot_survives_a_restart() -> None:
    r = rule(limit=50)
    batch = [Committed(7, crossing("cam-a", "in"), "c"), Committed(8, crossing("cam-b", "in"), "c")]
    r.apply(batch, T0)
    r.apply(batch, T0)  # the same committed records again (a replay after restore)
    r.apply([Committed(8, crossing("cam-b", "in"), "c")], T0)
    assert r.state["main"].underground == 2
    snap = json.loads(json.dumps(r.snapshot()))  # what the engine stores: plain JSON
    again = rule(limit=50)
    again.restore(snap)
    again.apply(batch, T0)
    again.apply([Committed(9, crossing("cam-a", "out"), "c")], T0)
    assert again.state["main"].underground == 1
    assert again.state["main"].cameras == {"cam-a": {"in": 1, "out": 1}, "cam-b": {"in": 1, "out": 0}}


def test_over_limit_and_negative_alarms_with_hysteresis() -> None:
    r = rule(limit=3)  # hysteresis 2: over_limit clears at <= 1
    f = Feed(r)
    for _ in range(4):
        f.commit(crossing("cam-a", "in"))
    raised = alarms(f.out, "headcount_over_limit")
    assert len(raised) == 1 and raised[0]["state"] == "raised" and raised[0]["id"] == "headcount:over_limit:main"
    assert raised[0]["severity"] == "immediate" and raised[0]["evidence"]["underground"] == 4
    f.commit(crossing("cam-b", "out"))  # 3: at the limit, inside the band
    f.commit(crossing("cam-b", "in"))  # 4 again: no second raise
    f.commit(crossing("cam-b", "out"), crossing("cam-b", "out"))  # 2: still inside the band
    assert len(alarms(f.out, "headcount_over_limit")) == 1
    f.commit(crossing("cam-b", "out"))  # 1 = limit - hysteresis: cleared
    assert [a["state"] for a in alarms(f.out, "headcount_over_limit")] == ["raised", "cleared"]
    f.commit(crossing("cam-a", "out"), crossing("cam-a", "out"))  # -1
    neg = alarms(f.out, "headcount_negative")
    assert [a["state"] for a in neg] == ["raised"] and neg[0]["id"] == "headcount:negative:main"
    assert f.out[-1].source == "main"
    f.commit(crossing("cam-a", "in"))
    assert [a["state"] for a in alarms(f.out, "headcount_negative")] == ["raised", "cleared"]


def test_reconciliation_at_local_time_across_midnight() -> None:
    r = rule(limit=50, reconcile_at="00:30")
    f = Feed(r)
    f.tick(T0)  # first run: the last 00:30 is the baseline, nothing reconciled
    f.commit(crossing("cam-a", "in"), crossing("cam-a", "in"), crossing("cam-b", "out"))
    midnight = datetime(2026, 11, 26, 0, 0, tzinfo=SH).timestamp()
    assert [x for x in f.tick(midnight) if x.payload.get("event") == "headcount_reconciled"] == []
    got = f.tick(midnight + 30 * 60)
    rec = [x.payload for x in got if x.payload.get("event") == "headcount_reconciled" and x.source == "main"]
    assert rec and rec[0]["found"] == 1 and rec[0]["in"] == 2 and rec[0]["out"] == 1
    assert rec[0]["at"].startswith("2026-11-26T00:30:00+08:00")
    nz = alarms(got, "headcount_not_zero_at_reconcile")
    assert [(a["state"], a["id"]) for a in nz] == [("raised", "headcount:not_zero_at_reconcile:main")]
    assert r.state["main"].underground == 0 and counts(got)[-1] == 0
    assert f.tick(midnight + 31 * 60) == []  # once a day
    # the clock stepped back an hour (NTP): no second reconciliation for the same day
    assert f.tick(midnight + 25 * 60) == [] and f.tick(midnight + 40 * 60) == []
    nxt = f.tick(midnight + 86400 + 30 * 60 + 5)
    rec2 = [x.payload for x in nxt if x.payload.get("event") == "headcount_reconciled" and x.source == "main"]
    assert rec2 and rec2[0]["found"] == 0
    assert [a["state"] for a in alarms(nxt, "headcount_not_zero_at_reconcile")] == ["cleared"]


def test_reconciliation_across_a_daylight_saving_change() -> None:
    ny = ZoneInfo("America/New_York")  # 2026-11-01 02:00 EDT -> 01:00 EST (01:30 happens twice)
    r = rule(limit=50, reconcile_at="01:30", tz="America/New_York")
    f = Feed(r)
    f.tick(datetime(2026, 10, 31, 12, 0, tzinfo=ny).timestamp())
    at = datetime(2026, 10, 31, 13, 0, tzinfo=ny).timestamp()
    f.commit(crossing("cam-a", "in", ts=at), now=at)
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ny).timestamp()  # first 01:30 (EDT)
    got = f.tick(first + 1)
    assert [x.payload["found"] for x in got if x.payload.get("event") == "headcount_reconciled" and x.source == "main"] == [1]
    assert f.tick(first + 3600 + 1) == []  # 01:30 again (EST): not a second reconciliation
    nxt = f.tick(datetime(2026, 11, 2, 1, 30, tzinfo=ny).timestamp() + 1)  # 25 h later
    assert [x.payload["found"] for x in nxt if x.payload.get("event") == "headcount_reconciled" and x.source == "main"] == [0]


def value(v: float | None, ts: float, q: str = "good") -> Record:
    return Record("pps-1", Kind.TELEMETRY, {"values": {"people": {"v": v, "q": q}}}, ts=ts)


EXT = [{"shaft": "main", "device": "pps-1", "point": "people", "tolerance": 1, "for": "60s", "max_age": "120s"}]


def test_external_mismatch_needs_to_last_and_clears_when_back_within() -> None:
    r = rule(limit=50, external=EXT)
    f = Feed(r)
    f.commit(crossing("cam-a", "in"), crossing("cam-a", "in"), crossing("cam-a", "in"), now=T0)  # 3
    f.commit(value(3, T0 + 1), now=T0 + 1)
    f.commit(value(1, T0 + 10), now=T0 + 10)  # 2 apart, tolerance 1: pending
    assert alarms(f.tick(T0 + 69)) == []
    f.commit(value(2, T0 + 20), now=T0 + 20)  # within: the pending mismatch is forgotten
    f.commit(value(1, T0 + 30), now=T0 + 30)  # beyond again from here
    assert alarms(f.tick(T0 + 89)) == []
    got = alarms(f.tick(T0 + 90), "headcount_mismatch")
    assert [(a["state"], a["id"]) for a in got] == [("raised", "headcount:mismatch:main")]
    assert got[0]["evidence"]["external"] == 1 and got[0]["evidence"]["underground"] == 3
    assert alarms(f.tick(T0 + 95)) == []  # raised once
    f.commit(crossing("cam-a", "out", ts=T0 + 100), now=T0 + 100)  # 2 vs 1: within
    assert [a["state"] for a in alarms(f.out, "headcount_mismatch")] == ["raised", "cleared"]


def test_stale_or_bad_external_value_is_unknown_never_compared() -> None:
    r = rule(limit=50, external=EXT)
    f = Feed(r)
    f.commit(crossing("cam-a", "in"), crossing("cam-a", "in"), crossing("cam-a", "in"), now=T0)
    f.commit(value(None, T0, q="bad"), now=T0)
    f.commit(value(0, T0 + 1, q="stale"), now=T0 + 1)
    assert alarms(f.tick(T0 + 2)) == [] and alarms(f.tick(T0 + 100)) == []  # bad / stale values: unknown
    assert r.state["main"].mismatch_since is None
    f.commit(value(0, T0 + 600), now=T0 + 600)  # good, 3 apart
    assert alarms(f.tick(T0 + 650)) == []
    assert alarms(f.tick(T0 + 721)) == []  # no newer value for max_age (120 s): unknown, not compared
    assert r.state["main"].mismatch_since is None
    f.commit(value(0, T0 + 800), now=T0 + 800)
    assert [a["state"] for a in alarms(f.tick(T0 + 861), "headcount_mismatch")] == ["raised"]


def test_config_errors_name_the_place() -> None:
    doc = {
        "gateway": {"site": "s", "id": "g"},
        "shafts": [{"name": "main"}],
        "cameras": [{"id": "cam-a", "url": "x", "lines": [{"name": "gate", "points": [[0, 0], [1, 1]], "shaft": "main"}]}],
        "rules": {
            "headcount": {"timezone": "Asia/Shanghai", "external": [{"shaft": "nope", "device": "pps-1", "point": "people"}]}
        },
    }
    with pytest.raises(ConfigError) as exc:
        load_settings_text(json.dumps(doc))
    assert "rules.headcount.external[0].shaft: found 'nope'; expected a shaft defined under 'shafts:'" in str(exc.value)
    assert "rules.headcount.external[0].device: found 'pps-1'; expected a device id" in str(exc.value)
    with pytest.raises(ValidationError, match="IANA"):
        HeadcountRules.model_validate({"timezone": "Mars/Olympus"})
    doc["rules"] = {"headcount": {"timezone": "Asia/Shanghai"}}
    rules = build(load_settings_text(json.dumps(doc)))
    assert len(rules) == 1 and rules[0].lines == {("cam-a", "gate"): "main"}


def test_a_raised_mismatch_whose_external_count_goes_silent_stays_raised_and_says_unknown() -> None:
    r = rule(limit=50, external=EXT)
    f = Feed(r)
    f.commit(crossing("cam-a", "in"), crossing("cam-a", "in"), crossing("cam-a", "in"), now=T0)
    f.commit(value(0, T0 + 1), now=T0 + 1)  # 3 apart
    assert [a["state"] for a in alarms(f.tick(T0 + 62), "headcount_mismatch")] == ["raised"]
    silent = f.tick(T0 + 200)  # no value for max_age: unknown — not agreement, so no clear
    assert alarms(silent, "headcount_mismatch") == []
    assert [(e.payload["event"], e.payload["unknown"]) for e in silent if e.payload.get("event")] == [("external_count", True)]
    assert f.tick(T0 + 300) == []  # said once
    f.commit(value(3, T0 + 400), now=T0 + 400)  # back, and agreeing
    back = [x for x in f.out if x.ts == T0 + 400]
    assert [e.payload["unknown"] for e in back if e.payload.get("event") == "external_count"] == [False]
    assert [a["state"] for a in alarms(back, "headcount_mismatch")] == ["cleared"]
