"""Rectification mode: per-place and per-shift limits inside an approved window; seal suppression."""

from __future__ import annotations

import datetime as dt
import json

from buffer.record import Kind, Record
from config.rules.site import SiteRules
from rules.rectification import RectificationRule
from rules.schedule import Calendar
from tests.rules.sitefeed import camera_telemetry, committed, payloads, seal_alarm

SITE = SiteRules.model_validate(
    {
        "timezone": "Asia/Shanghai",
        "shifts": [{"name": "day", "start": "08:00", "end": "16:00"}, {"name": "night", "start": "22:00", "end": "06:00"}],
        "rectification": [
            {
                "name": "fix-2",
                "from": "2026-11-24",
                "until": "2026-11-26",
                "shifts": ["day", "night"],
                "places": ["cam-a.face-1", "cam-a.face-2", "cam-seal"],
                "max_per_shift": 15,
            }
        ],
    }
)
CAL = Calendar(SITE.timezone)


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=CAL.zone).timestamp()


def zones(t: float, **counts: int) -> list:
    return [
        camera_telemetry("cam-a", t, zones={z.replace("_", "-"): {"count": n, "peak": n, "limit": 20} for z, n in counts.items()})
    ]


def alarms(out: list[Record]) -> list[tuple[str, str, str]]:
    return [(p["alarm"], p["state"], p["id"]) for p in payloads(out, Kind.ALARM)]


def test_over_nine_in_a_place_is_an_alarm_during_the_window() -> None:
    rule = RectificationRule(SITE, CAL)
    t = at(25, 9)
    assert alarms(rule.apply(zones(t, face_1=9, face_2=3), t)) == []
    out = rule.apply(zones(t + 10, face_1=10, face_2=3), t + 10)
    assert alarms(out) == [("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-1")]
    assert payloads(out, Kind.ALARM)[0]["evidence"] == {"window": "fix-2", "place": "cam-a.face-1", "count": 10, "limit": 9}
    assert alarms(rule.apply(zones(t + 20, face_1=11, face_2=3), t + 20)) == []  # one alarm, not one per frame
    out = rule.apply(zones(t + 30, face_1=8, face_2=3), t + 30)
    assert alarms(out) == [("place_over_limit", "cleared", "rectification:place_over_limit:cam-a.face-1")]


def test_per_shift_total_over_the_approved_places() -> None:
    rule = RectificationRule(SITE, CAL)
    t = at(25, 23)  # night shift of the 25th
    out = rule.apply(zones(t, face_1=8, face_2=8), t)
    assert alarms(out) == [("shift_over_limit", "raised", "rectification:shift_over_limit:fix-2")]
    # the night shift that started on the 26th runs into the 27th: still inside the approval
    rule2 = RectificationRule(SITE, CAL)
    t2 = at(27, 3)
    assert rule2.active(t2) is not None
    assert rule2.active(at(27, 9)) is None  # the 27th's day shift is not approved


def test_seal_alarms_are_suppressed_only_inside_approved_places_and_times() -> None:
    rule = RectificationRule(SITE, CAL)
    inside = seal_alarm("cam-seal", at(25, 10))
    out = rule.apply([inside], at(25, 10))
    [ev] = payloads(out, Kind.EVENT)
    assert ev["event"] == "seal_alarm_suppressed" and ev["alarm_seq"] == inside.seq and ev["window"] == "fix-2"
    assert out[0].source == "cam-seal"
    # between shifts (17:00), outside the dates, and on a camera that is not an approved place: a breach again
    for c in (seal_alarm("cam-seal", at(25, 17)), seal_alarm("cam-seal", at(28, 10)), seal_alarm("cam-other", at(25, 10))):
        assert rule.apply([c], c.record.ts) == []


def test_outside_the_window_limits_do_not_apply_and_a_raised_alarm_clears_at_its_end() -> None:
    rule = RectificationRule(SITE, CAL)
    t = at(25, 15, 59)
    assert alarms(rule.apply(zones(t, face_1=12), t)) == [
        ("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-1")
    ]
    out = rule.tick(at(25, 16, 0) + 1)
    assert alarms(out) == [("place_over_limit", "cleared", "rectification:place_over_limit:cam-a.face-1")]
    assert "window ended" in payloads(out, Kind.ALARM)[0]["text"]


def test_zone_alarm_payloads_count_too_and_state_survives_restore() -> None:
    rule = RectificationRule(SITE, CAL)
    t = at(25, 9)
    rec = Record(
        "cam-a", Kind.ALARM, {"alarm": "occupancy_limit", "state": "raised", "zone": "face-2", "count": 12, "limit": 12}, ts=t
    )
    out = rule.apply([committed(rec)], t)
    assert alarms(out) == [("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-2")]
    again = RectificationRule(SITE, CAL)
    again.restore(json.loads(json.dumps(rule.snapshot())))
    assert alarms(again.tick(t + 5)) == []  # still raised after a restart, not raised twice


TWO = SiteRules.model_validate(
    {
        "timezone": "Asia/Shanghai",
        "shifts": [{"name": "day", "start": "08:00", "end": "16:00"}],
        "rectification": [
            {"name": "fix-A", "from": "2026-11-24", "until": "2026-11-26", "places": ["cam-a.face-1"]},
            {
                "name": "fix-B",
                "from": "2026-11-24",
                "until": "2026-11-26",
                "shifts": ["day"],
                "places": ["cam-a.face-2", "cam-a.face-3"],
                "max_per_shift": 12,
            },
        ],
    }
)


def test_every_active_window_is_enforced_not_only_the_first() -> None:
    rule = RectificationRule(TWO, CAL)
    t = at(25, 9)
    assert [w.name for w in rule.active_all(t)] == ["fix-A", "fix-B"]
    out = rule.apply(zones(t, face_1=2, face_2=14), t)
    assert sorted(alarms(out)) == [
        ("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-2"),
        ("shift_over_limit", "raised", "rectification:shift_over_limit:fix-B"),
    ]
    assert payloads(out, Kind.ALARM)[0]["evidence"]["window"] == "fix-B"
    out = rule.apply(zones(t + 10, face_1=10, face_2=5, face_3=5), t + 10)  # fix-A's place over, fix-B's back
    assert sorted(alarms(out)) == [
        ("place_over_limit", "cleared", "rectification:place_over_limit:cam-a.face-2"),
        ("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-1"),
        ("shift_over_limit", "cleared", "rectification:shift_over_limit:fix-B"),
    ]


def test_a_silent_camera_does_not_clear_an_over_limit_alarm() -> None:
    rule = RectificationRule(SITE, CAL)
    t = at(25, 9)
    assert alarms(rule.apply(zones(t, face_1=12, face_2=3), t)) == [
        ("place_over_limit", "raised", "rectification:place_over_limit:cam-a.face-1")
    ]
    out = rule.tick(t + 130)  # cam-a silent for 130 s (max_age 120 s), 12 people may still be there
    assert alarms(out) == []
    (ev,) = payloads(out, Kind.EVENT)
    assert ev["unknown"] is True and "count unknown: camera silent" in ev["text"] and ev["places"] == ["cam-a.face-1"]
    assert rule.tick(t + 140) == []  # said once
    again = RectificationRule(SITE, CAL)
    again.restore(json.loads(json.dumps(rule.snapshot())))
    out = again.apply(zones(t + 150, face_1=12, face_2=3), t + 150)  # the camera is back, still 12
    assert alarms(out) == [] and payloads(out, Kind.EVENT)[0]["unknown"] is False
    out = again.apply(zones(t + 160, face_1=4, face_2=3), t + 160)  # a real count back within: cleared
    assert alarms(out) == [("place_over_limit", "cleared", "rectification:place_over_limit:cam-a.face-1")]


def test_an_approved_occupancy_zone_does_not_suppress_the_whole_seal_camera() -> None:
    site = SiteRules.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "rectification": [{"name": "fix-A", "from": "2026-11-24", "until": "2026-11-26", "places": ["cam-a.face-1"]}],
        }
    )
    rule = RectificationRule(site, CAL)
    c = seal_alarm("cam-a", at(25, 10))
    assert rule.apply([c], at(25, 10)) == []  # the seal alarm stands as a breach


def test_an_approved_seal_place_still_has_its_people_limit() -> None:
    """A seal camera approved as a place: its breach is suppressed, but 25 people there is over
    the 9 per place (and the shift total) — approved work is not unlimited work."""
    from buffer.record import Committed, Kind, Record
    from rules.rectification import RectificationRule

    rule = RectificationRule(SITE, CAL)
    t = at(25, 10)
    seal = Record("cam-seal", Kind.ALARM, {"alarm": "seal_breach", "state": "raised", "objects": 25, "classes": ["person"]}, ts=t)
    out = rule.apply([Committed(7, seal, "")], t) + rule.tick(t + 60)
    assert [o.payload.get("event") for o in out if o.payload.get("event")] == ["seal_alarm_suppressed"]
    raised = {o.payload["id"] for o in out if o.kind is Kind.ALARM and o.payload.get("state") == "raised"}
    assert "rectification:place_over_limit:cam-seal" in raised, raised
