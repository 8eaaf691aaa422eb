"""A seal alarm that rectification suppressed is approved work for the rules after it.

Found by the HIL scenario ``rectification_over_limit``: the suppression was recorded, but the
alarm manager still gave the seal alarm an alarm life and the stopped section was reported
"secretly running". Rules after the rectification rule see its ``seal_alarm_suppressed`` event
in the same commit (rules/engine.py) and leave that alarm alone; any other seal alarm stands.
"""

from __future__ import annotations

from buffer.record import Committed, Kind, Record
from config.rules.site import SectionSettings
from rules.alarms import AlarmManager
from rules.rectification import RectificationRule
from rules.site import SecretlyRunningRule
from tests.rules.sitefeed import committed, payloads, reading, seal_alarm
from tests.rules.test_rectification import CAL, SITE, at

SECTION = SectionSettings.model_validate(
    {"name": "north", "state": "stopped", "activity": {"seal_cameras": ["cam-seal", "cam-other"]}}
)


def one_commit(batch: list[Committed], now: float) -> tuple[list[Record], list[Record], list[Record]]:
    """The engine's order: each rule sees the batch plus the outputs of the rules before it."""
    rect, site, alarms = RectificationRule(SITE, CAL), SecretlyRunningRule(SECTION, CAL), AlarmManager()
    out_rect = rect.apply(batch, now)
    visible = batch + [committed(r) for r in out_rect]
    out_site = site.apply(visible, now)
    visible += [committed(r) for r in out_site]
    return out_rect, out_site, alarms.apply(visible, now)


def test_a_suppressed_seal_alarm_has_no_alarm_life_and_is_not_activity() -> None:
    t = at(25, 10)
    inside = seal_alarm("cam-seal", t)
    out_rect, out_site, out_alarms = one_commit([reading("plc-hoist", t, belt_running=False), inside], t)
    assert [p["alarm_seq"] for p in payloads(out_rect, Kind.EVENT)] == [inside.seq]
    assert payloads(out_site, Kind.ALARM) == []  # approved work at the seal: the section is quiet
    assert [p["observed"] for p in payloads(out_site, Kind.EVENT)] == ["quiet"]
    assert out_alarms == []


def test_a_seal_alarm_outside_the_approval_stands_as_a_breach() -> None:
    for c in (seal_alarm("cam-other", at(25, 10)), seal_alarm("cam-seal", at(25, 17))):  # another camera; between shifts
        out_rect, out_site, out_alarms = one_commit([c], c.record.ts)
        assert out_rect == []
        assert [p["alarm"] for p in payloads(out_site, Kind.ALARM)] == ["secretly_running"]
        states = {(p["id"], p["state"]) for p in payloads(out_alarms, Kind.EVENT)}
        assert (f"{c.record.source}:seal_breach", "raised") in states
