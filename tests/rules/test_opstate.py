"""Operating state from metered power, as a rule over committed telemetry (moved from drivers/).

The first test is tests/drivers' former hysteresis test with the same feed and assertions;
the others cover issue 13: a dead meter's last value must not keep counting.
"""

from __future__ import annotations

import json

from buffer.record import Kind, Record
from config.drivers import OperatingStateSettings
from rules.opstate import OperatingStateRule
from tests.rules.sitefeed import reading


def states(records: list[Record]) -> list[tuple[str, str]]:
    return [
        (r.payload["state"], r.payload["previous"])
        for r in records
        if r.kind is Kind.EVENT and r.payload["event"] == "operating_state" and r.source == "site"
    ]


def test_operating_state_hysteresis_and_minimum_duration() -> None:
    rule = OperatingStateRule(
        OperatingStateSettings(enabled=True, power_points=["m.p"], on_above_kw=50, off_below_kw=20, min_duration=60)
    )
    out: list[Record] = []
    t = 1000.0
    for kw, dt in [(5, 0), (5, 61), (80, 10), (80, 30), (30, 20), (80, 10), (80, 50), (35, 30), (10, 100), (10, 61)]:
        t += dt
        out += rule.apply([reading("m", t, p=float(kw))], t)
    # stopped after 61 s low; a 30 kW dip inside the band does not stop it; short spikes do not flip it
    assert states(out) == [("stopped", "unknown"), ("operating", "stopped"), ("stopped", "operating")]
    assert out[1].payload["power_kw"] == 80.0 and out[1].payload["thresholds_kw"] == [20, 50]


def _rule() -> OperatingStateRule:
    return OperatingStateRule(
        OperatingStateSettings(
            enabled=True, power_points=["hoist.p", "fan.p"], on_above_kw=50, off_below_kw=20, min_duration=10, max_age=30
        )
    )


def test_a_stale_meter_leaves_the_sum_and_cannot_prove_stopped() -> None:
    rule = _rule()
    out = rule.apply([reading("hoist", 0, p=40.0), reading("fan", 0, p=30.0)], 0)
    out += rule.apply([reading("hoist", 11, p=40.0), reading("fan", 11, p=30.0)], 11)
    assert states(out) == [("operating", "unknown")]
    # the hoist meter dies: its stale 40 kW leaves the sum; 30 kW alone is a lower bound, not "stopped"
    out = rule.apply([reading("hoist", 20, p=("stale", 40.0)), reading("fan", 20, p=10.0)], 20)
    for t in range(21, 60):
        out += rule.tick(float(t)) + rule.apply([reading("fan", float(t), p=10.0)], float(t))
    assert states(out) == []
    assert rule.state == "operating"


def test_a_silent_meter_ages_out_and_all_unknown_is_unknown_never_stopped() -> None:
    rule = _rule()
    out = rule.apply([reading("hoist", 0, p=0.0), reading("fan", 0, p=0.0)], 0)
    out += rule.apply([reading("hoist", 11, p=0.0), reading("fan", 11, p=0.0)], 11)
    assert states(out) == [("stopped", "unknown")]
    out = rule.tick(40.0)  # both readings 29 s old: still fresh
    assert states(out) == []
    out = rule.tick(42.0)  # 31 s: older than max_age, nothing known
    assert states(out) == [("unknown", "stopped")]
    assert out[0].payload["power_kw"] is None and out[0].payload["unknown_points"] == ["hoist.p", "fan.p"]


def test_operating_can_be_proved_by_one_meter_while_the_other_is_bad() -> None:
    rule = _rule()
    out = rule.apply([reading("hoist", 0, p=90.0), reading("fan", 0, p=("bad", None))], 0)
    out += rule.apply([reading("hoist", 10, p=90.0)], 10)
    assert states(out) == [("operating", "unknown")]
    assert out[0].payload["unknown_points"] == ["fan.p"]


def test_state_survives_snapshot_and_restore() -> None:
    rule = _rule()
    rule.apply([reading("hoist", 0, p=90.0), reading("fan", 0, p=1.0)], 0)
    rule.apply([reading("hoist", 10, p=90.0)], 10)
    again = _rule()
    again.restore(json.loads(json.dumps(rule.snapshot())))  # what rule_state stores
    assert again.state == "operating"
    out = again.apply([reading("hoist", 12, p=90.0)], 12)
    assert states(out) == []  # not announced a second time after a restart


def test_a_spike_shorter_than_min_duration_does_not_flip_the_state() -> None:
    rule = OperatingStateRule(
        OperatingStateSettings(enabled=True, power_points=["m.p"], on_above_kw=50, off_below_kw=20, min_duration=60)
    )
    out: list[Record] = []
    for t, kw in [(0, 5), (61, 5), (70, 80), (100, 80), (110, 5), (200, 5)]:
        out += rule.apply([reading("m", float(t), p=float(kw))], float(t)) + rule.tick(float(t) + 1)
    assert states(out) == [("stopped", "unknown")]


def test_report_on_change_one_reading_then_ticks_flips_the_state() -> None:
    """Drivers report unchanged values only every max_silent: the engine's tick carries the time."""
    rule = OperatingStateRule(
        OperatingStateSettings(enabled=True, power_points=["m.p"], on_above_kw=50, off_below_kw=20, min_duration=5, max_age=180)
    )
    out = rule.apply([reading("m", 0.0, p=12.0)], 0.0)
    for t in range(1, 7):
        out += rule.tick(float(t))
    assert states(out) == [("stopped", "unknown")]
    assert out[0].ts == 5.0 and out[0].payload["since_ts"] == 0.0
