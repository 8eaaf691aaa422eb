"""'Stopped on paper, secretly running' as a pure state machine over committed records."""

from __future__ import annotations

import datetime as dt
import json

from buffer.record import Kind, Record
from config.rules.site import SectionSettings
from rules.schedule import Calendar
from rules.site import SecretlyRunningRule
from tests.rules.sitefeed import belt_state, payloads, reading, seal_alarm

CAL = Calendar("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=CAL.zone).timestamp()


def section(**over: object) -> SectionSettings:
    doc: dict[str, object] = {
        "name": "north",
        "state": "stopped",
        "clear_after": "60s",
        "max_age": "30s",
        "expected_loads": ["plc-hoist.fan_running", "plc-hoist.pump1_running", "meter-fan.p_total"],
        "activity": {
            "power": [{"point": "meter-hoist.p_total", "above": 20}],
            "run_bits": ["plc-hoist.hoist_running", "plc-hoist.belt_running"],
            "belt_cameras": ["cam-belt"],
            "seal_cameras": ["cam-seal", "cam-seal2"],
        },
    }
    doc.update(over)
    return SectionSettings.model_validate(doc)


def quiet_plant(t: float) -> list:
    """A stopped mine: pumps and the main fan run (expected), hoist and belt do not."""
    return [
        reading("plc-hoist", t, hoist_running=False, belt_running=False, fan_running=True, pump1_running=True),
        reading("meter-fan", t, p_total=125.0),
        reading("meter-hoist", t, p_total=3.0),
    ]


def alarms(out: list[Record]) -> list[dict]:
    return [p for p in payloads(out, Kind.ALARM) if p["alarm"] == "secretly_running"]


def test_expected_loads_alone_raise_nothing() -> None:
    rule = SecretlyRunningRule(section(), CAL)
    out: list[Record] = []
    for k in range(0, 600, 10):
        out += rule.apply(quiet_plant(T0 + k), T0 + k) + rule.tick(T0 + k + 5)
    assert alarms(out) == []
    assert [p["observed"] for p in payloads(out, Kind.EVENT)] == ["quiet"]


def test_activity_raises_one_alarm_with_all_the_evidence_and_clears_with_hysteresis() -> None:
    rule = SecretlyRunningRule(section(), CAL)
    out = rule.apply([*quiet_plant(T0), seal_alarm("cam-seal", T0 - 5000, b"old"), seal_alarm("cam-seal", T0 - 4000)], T0)
    assert alarms(out) == []  # the seal alarms are older than seal_hold: not activity now
    t = T0 + 10
    out = rule.apply(
        [
            reading("plc-hoist", t, hoist_running=True, belt_running=True),
            reading("meter-hoist", t, p_total=185.0),
            belt_state("cam-belt", t, True),
        ],
        t,
    )
    out += rule.apply([reading("meter-hoist", t + 2, p_total=190.0)], t + 2)  # still running: no second alarm
    raised = [r for r in out if r.kind is Kind.ALARM]
    assert len(raised) == 1
    a = raised[0]
    assert a.source == "north"
    p = a.payload
    assert (p["alarm"], p["state"], p["id"], p["severity"]) == (
        "secretly_running",
        "raised",
        "site:secretly_running:north",
        "immediate",
    )
    ev = p["evidence"]
    assert ev["declared"] == "stopped"
    assert [(x["point"], x["v"], x["above"]) for x in ev["power"]] == [("meter-hoist.p_total", 185.0, 20)]
    assert {x["point"]: x["v"] for x in ev["plc"]} == {"plc-hoist.hoist_running": True, "plc-hoist.belt_running": True}
    assert ev["belt"][0]["running"] is True
    seals = {s["camera"]: s for s in ev["seal_cameras"]}
    assert seals["cam-seal"]["snapshot"] == ["cam-seal-snapshot.jpg"]
    assert seals["cam-seal2"]["last_seal_alarm"] is None
    assert [(x.name, x.data) for x in a.attachments] == [("cam-seal-snapshot.jpg", b"\xff\xd8seal\xff\xd9")]
    assert {x["point"] for x in ev["expected_loads"]} == {"plc-hoist.fan_running", "plc-hoist.pump1_running", "meter-fan.p_total"}
    assert "declared stopped" in p["text"] and "meter-hoist.p_total" in p["text"]
    json.dumps(p)  # the payload is plain JSON; the JPEG travels as an attachment
    # quiet again: cleared only after clear_after (60 s) without activity
    t += 20
    quiet = [*quiet_plant(t), belt_state("cam-belt", t, False)]
    out = rule.apply(quiet, t)
    for k in range(10, 60, 10):
        out += rule.apply(quiet_plant(t + k), t + k)
    assert alarms(out) == []
    out = rule.apply(quiet_plant(t + 61), t + 61)
    assert [(x["state"], x["id"]) for x in alarms(out)] == [("cleared", "site:secretly_running:north")]


def test_a_seal_alarm_alone_is_activity_and_its_picture_is_attached() -> None:
    rule = SecretlyRunningRule(section(), CAL)
    rule.apply(quiet_plant(T0), T0)
    out = rule.apply([seal_alarm("cam-seal2", T0 + 3, b"\xff\xd8two\xff\xd9")], T0 + 3)
    [a] = [r for r in out if r.kind is Kind.ALARM]
    assert [s["signal"] for s in a.payload["evidence"]["power"]] == []
    assert [x.name for x in a.attachments] == ["cam-seal2-snapshot.jpg"]


def test_stale_power_is_not_activity_and_all_unknown_is_unknown_never_quiet() -> None:
    rule = SecretlyRunningRule(section(activity={"power": [{"point": "meter-hoist.p_total", "above": 20}]}), CAL)
    out = rule.apply([reading("meter-hoist", T0, p_total=("stale", 185.0))], T0)
    assert alarms(out) == [] and rule.observed == "unknown"
    out = rule.apply([reading("meter-hoist", T0 + 1, p_total=2.0)], T0 + 1)
    assert rule.observed == "quiet"
    out = rule.tick(T0 + 40)  # the meter went silent for longer than max_age (30 s)
    assert [p["observed"] for p in payloads(out, Kind.EVENT)] == ["unknown"]


def test_unknown_does_not_clear_a_raised_alarm() -> None:
    rule = SecretlyRunningRule(section(activity={"power": [{"point": "meter-hoist.p_total", "above": 20}]}), CAL)
    assert alarms(rule.apply([reading("meter-hoist", T0, p_total=185.0)], T0))
    out: list[Record] = []
    for k in range(1, 300, 10):
        out += rule.tick(T0 + k)  # the meter is dead: nothing known, the alarm stays
    assert alarms(out) == []


def test_an_operating_section_raises_nothing_and_the_schedule_decides() -> None:
    sec = section(state="operating", schedule=[{"from": "2026-11-20", "until": "2026-11-30", "state": "sealed"}])
    rule = SecretlyRunningRule(sec, CAL)
    before = dt.datetime(2026, 11, 19, 23, 30, tzinfo=CAL.zone).timestamp()
    assert alarms(rule.apply([reading("meter-hoist", before, p_total=185.0)], before)) == []
    # local midnight (Asia/Shanghai) starts the sealed period: the same reading is now a breach
    after = dt.datetime(2026, 11, 20, 0, 0, 5, tzinfo=CAL.zone).timestamp()
    [a] = alarms(rule.apply([reading("meter-hoist", after, p_total=185.0)], after))
    assert a["evidence"]["declared"] == "sealed"
    end = dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=CAL.zone).timestamp()
    [c] = alarms(rule.apply([reading("meter-hoist", end, p_total=185.0)], end))
    assert c["state"] == "cleared" and "declared operating" in c["text"]


def test_restart_keeps_the_alarm_raised_but_not_the_pictures() -> None:
    rule = SecretlyRunningRule(section(), CAL)
    rule.apply([*quiet_plant(T0), seal_alarm("cam-seal", T0)], T0)
    snap = json.loads(json.dumps(rule.snapshot()))  # plain JSON: the JPEG bytes are not in it
    assert snap["seals"]["cam-seal"]["seq"] > 0
    again = SecretlyRunningRule(section(), CAL)
    again.restore(snap)
    assert again.raised and again.pictures == {}
    assert alarms(again.apply(quiet_plant(T0 + 5), T0 + 5)) == []  # not raised twice


def test_an_operating_section_does_not_announce_every_hoist_start() -> None:
    rule = SecretlyRunningRule(section(state="operating"), CAL)
    out: list[Record] = []
    for k in range(0, 600, 30):
        t = T0 + k
        out += rule.apply([reading("plc-hoist", t, hoist_running=k % 60 == 0, belt_running=False)], t)
    assert [p["declared"] for p in payloads(out, Kind.EVENT)] == ["operating"]  # the first look only


def test_the_evidence_carries_the_latest_picture_of_any_record_not_only_of_a_seal_alarm() -> None:
    from buffer.record import Attachment
    from tests.rules.sitefeed import committed

    rule = SecretlyRunningRule(section(), CAL)
    rule.apply(quiet_plant(T0), T0)
    # an approved seal alarm (rectification suppressed it: not activity) and a tamper alarm with a
    # picture: no seal alarm that counts, yet the cameras did send pictures
    approved = seal_alarm("cam-seal", T0 + 1, b"\xff\xd8approved\xff\xd9")
    suppressed = committed(
        Record("cam-seal", Kind.EVENT, {"event": "seal_alarm_suppressed", "alarm_seq": approved.seq}, ts=T0 + 1)
    )
    tamper = committed(
        Record(
            "cam-seal2",
            Kind.ALARM,
            {"alarm": "tamper", "kind": "covered", "state": "raised"},
            ts=T0 + 2,
            attachments=(Attachment("frame.jpg", "image/jpeg", b"\xff\xd8tamper\xff\xd9"),),
        )
    )
    assert alarms(rule.apply([approved, suppressed, tamper], T0 + 2)) == []
    t = T0 + 5
    out = rule.apply([reading("plc-hoist", t, hoist_running=True, belt_running=True, fan_running=True, pump1_running=True)], t)
    (a,) = [r for r in out if r.kind is Kind.ALARM]
    seals = {s["camera"]: s for s in a.payload["evidence"]["seal_cameras"]}
    assert seals["cam-seal"]["last_seal_alarm"] is None  # the approved one is not a breach
    assert seals["cam-seal"]["snapshot"] == ["cam-seal-snapshot.jpg"]
    assert seals["cam-seal"]["snapshot_from"] == {
        "seq": approved.seq,
        "ts": seals["cam-seal"]["snapshot_from"]["ts"],
        "record": "alarm:seal_breach",
        "approved": True,
    }
    assert seals["cam-seal2"]["snapshot_from"]["record"] == "alarm:tamper"
    assert sorted((x.name, x.data) for x in a.attachments) == [
        ("cam-seal-snapshot.jpg", b"\xff\xd8approved\xff\xd9"),
        ("cam-seal2-frame.jpg", b"\xff\xd8tamper\xff\xd9"),
    ]
    # a camera that never sent a picture: said plainly, no frame invented
    fresh = SecretlyRunningRule(section(), CAL)
    fresh.apply(quiet_plant(T0), T0)
    out = fresh.apply([reading("plc-hoist", t, hoist_running=True, belt_running=True, fan_running=True, pump1_running=True)], t)
    (a,) = [r for r in out if r.kind is Kind.ALARM]
    assert [(s["snapshot"], s["snapshot_from"]) for s in a.payload["evidence"]["seal_cameras"]] == [(None, None)] * 2
    assert a.attachments == ()
