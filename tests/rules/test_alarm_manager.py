"""The alarm manager as a pure state machine: records in, records out, a fake ``now``."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from buffer.record import Committed, Kind, Record
from config.rules.alarms import AlarmRules
from rules.alarm_life import ack_deadline, alarm_id, severity_of
from rules.alarms import AlarmManager

T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC = 2025-11-25 00:00 Asia/Shanghai


def feed(rule: AlarmManager, *records: Record, now: float = T0) -> list[Record]:
    return rule.apply([Committed(i + 1, r, "c") for i, r in enumerate(records)], now)


def alarm(state: str = "raised", kind: str = "seal_breach", source: str = "cam-1", ts: float = T0, **extra: Any) -> Record:
    return Record(source, Kind.ALARM, {"alarm": kind, "state": state, **extra}, ts=ts)


def command(cid: str, cmd: str, target: str, source: str = "platform", by: str = "li.wei") -> Record:
    return Record(
        source,
        Kind.EVENT,
        {
            "event": "command",
            "id": cid,
            "command": cmd,
            "target": target,
            "by": by,
            "origin": "mqtt" if source == "platform" else "cli",
            "received": "x",
        },
    )


def events(out: list[Record], name: str) -> list[dict[str, Any]]:
    return [r.payload for r in out if r.kind is Kind.EVENT and r.payload.get("event") == name]


def reply(out: list[Record]) -> dict[str, Any]:
    (r,) = events(out, "command_reply")
    return r


def test_id_severity_and_deadline_rules() -> None:
    cfg = AlarmRules(severity={"tamper": "immediate"})
    assert alarm_id("cam-1", {"alarm": "seal_breach"}) == "cam-1:seal_breach"
    assert alarm_id("cam-1", {"alarm": "occupancy_limit", "zone": "z2"}) == "cam-1:occupancy_limit:z2"
    assert alarm_id("site", {"alarm": "secretly_running", "id": "site:secretly_running:site"}) == "site:secretly_running:site"
    assert severity_of("seal_breach", {}, cfg) == "immediate"
    assert severity_of("headcount_over_limit", {}, cfg) == "immediate"
    assert severity_of("mains_lost", {}, cfg) == "immediate"
    assert severity_of("camera_lost", {}, cfg) == "same_day"
    assert severity_of("camera_lost", {"severity": "immediate"}, cfg) == "immediate"
    assert severity_of("tamper", {"severity": "same_day"}, cfg) == "immediate"  # config wins
    assert ack_deadline("immediate", T0, cfg) == T0 + 900
    due = dt.datetime.fromtimestamp(ack_deadline("same_day", T0, cfg), zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert (due.date().isoformat(), due.hour, due.minute) == ("2025-11-25", 23, 59)
    late = T0 + 23 * 3600 + 59 * 60 + 59.5  # 23:59:59.5 site time: due the next day
    due = dt.datetime.fromtimestamp(ack_deadline("same_day", late, cfg), zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert due.date().isoformat() == "2025-11-26"


def test_full_life_raised_acknowledged_handled_cleared_closed() -> None:
    rule = AlarmManager()
    out = feed(rule, alarm())
    (ev,) = events(out, "alarm_state")
    assert ev | {"at": None} == ev | {
        "id": "cam-1:seal_breach",
        "type": "seal_breach",
        "severity": "immediate",
        "state": "raised",
        "from": None,
        "by": "cam-1",
        "at": None,
    }
    assert out[0].source == "cam-1"
    out = feed(rule, command("c1", "ack", "cam-1:seal_breach"), now=T0 + 60)
    assert reply(out)["result"] == "ok" and reply(out)["state"] == "acknowledged"
    (ev,) = events(out, "alarm_state")
    assert (ev["state"], ev["from"], ev["by"], ev["command"]) == ("acknowledged", "raised", "li.wei", "c1")
    assert out[0].source == "cam-1" and out[1].source == "platform"
    out = feed(rule, command("c2", "handle", "cam-1:seal_breach"), now=T0 + 120)
    assert events(out, "alarm_state")[0]["state"] == "handled"
    out = feed(rule, alarm("cleared"), now=T0 + 130)
    assert events(out, "alarm_state")[0] | {} == events(out, "alarm_state")[0] | {"state": "cleared", "from": "handled"}
    out = feed(rule, command("c3", "close", "cam-1:seal_breach", source="local"), now=T0 + 140)
    (ev,) = events(out, "alarm_state")
    assert (ev["state"], ev["from"]) == ("closed", "cleared") and reply(out)["result"] == "ok"
    assert rule.open == {}
    # a cleared for a closed alarm moves nothing; a new raise is a new occurrence
    assert feed(rule, alarm("cleared")) == []
    assert events(feed(rule, alarm(), now=T0 + 200), "alarm_state")[0]["state"] == "raised"


def test_reraise_while_open_is_counted_not_new() -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    assert feed(rule, alarm()) == []  # still active: counted only
    assert rule.open["cam-1:seal_breach"].raised_count == 2
    out = feed(rule, alarm("cleared"))
    assert events(out, "alarm_state")[0]["state"] == "cleared"
    out = feed(rule, alarm())
    (ev,) = events(out, "alarm_state")
    assert (ev["state"], ev["from"], ev["raised_count"]) == ("raised", "cleared", 3)
    assert len(rule.open) == 1


def test_idempotent_by_command_id() -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    assert reply(feed(rule, command("c1", "ack", "cam-1:seal_breach")))["result"] == "ok"
    out = feed(rule, command("c1", "ack", "cam-1:seal_breach"))
    assert reply(out)["result"] == "duplicate" and events(out, "alarm_state") == []
    # a rejected id stays rejected, even once the alarm would accept it
    assert reply(feed(rule, command("c9", "ack", "nope")))["result"] == "rejected"
    assert reply(feed(rule, command("c9", "ack", "nope")))["result"] == "duplicate"


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([("handle", "")], "must be acknowledged before it is handled"),
        ([("close", "")], "must be acknowledged before it is closed"),
        ([("ack", ""), ("ack", "")], "already acknowledged"),
        ([("ack", ""), ("handle", ""), ("handle", "")], "already handled"),
        ([("ack", "other:id")], "unknown alarm id 'other:id'"),
        ([("ack", "-")], "no target"),
    ],
)
def test_bad_transitions_are_rejected_with_reason(steps: list[tuple[str, str]], reason: str) -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    out: list[Record] = []
    for i, (cmd, target) in enumerate(steps):
        tgt = "" if target == "-" else (target or "cam-1:seal_breach")
        out = feed(rule, command(f"c{i}", cmd, tgt))
    r = reply(out)
    assert r["result"] == "rejected" and reason in r["reason"], r
    assert events(out, "alarm_state") == []


def test_close_without_ack_when_config_allows() -> None:
    rule = AlarmManager(AlarmRules(require_ack_before_close=False))
    feed(rule, alarm())
    assert reply(feed(rule, command("c1", "close", "cam-1:seal_breach")))["result"] == "ok"
    assert rule.open == {}


def test_other_commands_and_sources_are_not_ours() -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    permit = Record("platform", Kind.EVENT, {"event": "command", "id": "p1", "command": "permit", "target": "z"})
    spoof = command("c1", "ack", "cam-1:seal_breach", source="cam-1")  # a camera cannot acknowledge
    assert feed(rule, permit, spoof) == []
    assert not rule.open["cam-1:seal_breach"].acked
    nameless = Record("platform", Kind.EVENT, {"event": "command", "command": "ack", "target": "x"})
    assert reply(feed(rule, nameless))["reason"] == "command has no id"


def test_deadline_reannounces_and_escalates_until_acknowledged() -> None:
    cfg = AlarmRules(immediate_ack_within="15m", immediate_repeat="5m", escalate_to=["shift", "manager"])
    rule = AlarmManager(cfg)
    feed(rule, alarm(zone="z1", evidence={"big": "x" * 1000}))
    aid = "cam-1:seal_breach:z1"
    assert rule.tick(T0 + 899) == []
    out = rule.tick(T0 + 900)
    (rem,) = events(out, "alarm_reminder")
    assert (rem["reannounced"], rem["escalation_level"], rem["escalate_to"]) == (1, 1, "shift")
    (again,) = [r for r in out if r.kind is Kind.ALARM]
    assert again.payload["id"] == aid and again.payload["reannounced"] == 1 and "evidence" not in again.payload
    assert again.payload["zone"] == "z1" and again.source == "cam-1"
    assert rule.tick(T0 + 1000) == []  # repeat after 5 min
    out = rule.tick(T0 + 1200)
    assert events(out, "alarm_reminder")[0]["escalate_to"] == "manager"
    assert events(rule.tick(T0 + 1500), "alarm_reminder")[0]["escalation_level"] == 3
    feed(rule, command("c1", "ack", aid), now=T0 + 1600)
    assert rule.tick(T0 + 99_999) == []  # acknowledged: no more reminders


def test_same_day_deadline_at_site_time() -> None:
    rule = AlarmManager(AlarmRules(same_day_ack_by="08:30", timezone="UTC", same_day_repeat="1h"))
    feed(rule, alarm(kind="camera_lost", ts=T0))  # 16:00 UTC -> due 08:30:59 the next day
    due = T0 + 16.5 * 3600 + 59
    assert rule.tick(due - 1) == []
    assert events(rule.tick(due), "alarm_reminder")[0]["severity"] == "same_day"


def test_cleared_unacknowledged_alarm_is_reminded_not_reannounced() -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    feed(rule, alarm("cleared"))
    out = rule.tick(T0 + 900)
    assert len(events(out, "alarm_reminder")) == 1 and not [r for r in out if r.kind is Kind.ALARM]


def test_snapshot_restores_the_life_and_bounds_command_ids() -> None:
    cfg = AlarmRules(recent_commands=10, recent_rejected=10)
    rule = AlarmManager(cfg)
    feed(rule, alarm(), alarm(kind="mains_lost", source="agent"))
    for i in range(25):
        feed(rule, command(f"x{i}", "ack", "unknown"))
    assert len(rule.rejected) == 10 and "x0" not in rule.rejected and "x24" in rule.rejected
    feed(rule, command("a1", "ack", "cam-1:seal_breach"))
    snap = rule.snapshot()
    import json

    snap = json.loads(json.dumps(snap))  # the engine stores it as JSON
    again = AlarmManager(cfg)
    again.restore(snap)
    assert set(again.open) == {"cam-1:seal_breach", "agent:mains_lost"}
    assert again.open["cam-1:seal_breach"].state == "acknowledged"
    assert reply(feed(again, command("a1", "ack", "cam-1:seal_breach")))["result"] == "duplicate"
    assert reply(feed(again, command("a2", "handle", "cam-1:seal_breach")))["result"] == "ok"


def test_ignores_non_alarm_input_and_malformed_alarms() -> None:
    rule = AlarmManager()
    tele = Record("meter-1", Kind.TELEMETRY, {"values": {}})
    bad = Record("cam-1", Kind.ALARM, {"alarm": "x", "state": "maybe"})
    assert feed(rule, tele, bad, Record("cam-1", Kind.ALARM, {"state": "raised"})) == []
    assert rule.open == {}


def test_build_from_settings() -> None:
    from config.schema import Settings
    from rules.alarms import build

    on = Settings.model_validate({"gateway": {"site": "s", "id": "g"}})
    off = Settings.model_validate({"gateway": {"site": "s", "id": "g"}, "rules": {"alarms": {"enabled": False}}})
    assert [r.name for r in build(on)] == ["alarms"] and build(off) == []


def test_operator_moves_a_cleared_alarm_on_and_the_condition_can_return() -> None:
    rule = AlarmManager()
    feed(rule, alarm())
    feed(rule, command("c1", "ack", "cam-1:seal_breach"))
    out = feed(rule, alarm("cleared"))
    assert (events(out, "alarm_state")[0]["from"], events(out, "alarm_state")[0]["state"]) == ("acknowledged", "cleared")
    out = feed(rule, command("c2", "handle", "cam-1:seal_breach"))
    (ev,) = events(out, "alarm_state")
    assert (ev["from"], ev["state"], ev["condition"]) == ("cleared", "handled", "cleared")
    out = feed(rule, alarm())  # the condition returns: a new occurrence, to be acknowledged again
    (ev,) = events(out, "alarm_state")
    assert (ev["from"], ev["state"], ev["condition"], ev["raised_count"], ev["occurrence"]) == (
        "handled",
        "raised",
        "active",
        2,
        "new",
    )
    assert len(rule.open) == 1 and not rule.open["cam-1:seal_breach"].acked
    # and it is re-announced when nobody acknowledges the new occurrence in time
    reminders = [r.payload for r in rule.tick(T0 + 3 * 86400) if r.payload.get("event") == "alarm_reminder"]
    assert len(reminders) == 1 and reminders[0]["state"] == "raised"


def secretly_running(state: str, ts: float = T0) -> Record:
    return Record("site", Kind.ALARM, {"alarm": "secretly_running", "state": state, "id": SR}, ts=ts)


SR = "site:secretly_running:site"


def test_close_is_refused_while_the_condition_is_active() -> None:
    """The rule raises only on a change: closed while active, the alarm would be gone for good."""
    rule = AlarmManager()
    feed(rule, secretly_running("raised"))
    feed(rule, command("c1", "ack", SR))
    refused = reply(feed(rule, command("c2", "close", SR)))
    assert refused["result"] == "rejected" and "still active; handle it" in refused["reason"], refused
    assert SR in rule.open and rule.tick(T0 + 7200) == []  # still open (acknowledged: no reminder)
    feed(rule, command("c3", "handle", SR))
    feed(rule, secretly_running("cleared", T0 + 60), now=T0 + 60)
    out = feed(rule, command("c4", "close", SR), now=T0 + 61)
    assert reply(out)["result"] == "ok" and SR not in rule.open
    # a one-shot alarm type (no cleared ever comes) may still be closed while "active"
    feed(rule, alarm())
    feed(rule, command("s1", "ack", "cam-1:seal_breach"))
    assert reply(feed(rule, command("s2", "close", "cam-1:seal_breach")))["result"] == "ok"


def test_junk_cannot_evict_a_real_command_id_and_old_ids_do_not_act_on_a_new_occurrence() -> None:
    for window in (0.0, 86400.0):  # the separate caches alone keep c1 (window 0), and with a window
        rule = AlarmManager(AlarmRules(recent_commands=10, recent_rejected=10, remember_commands_for=window))
        feed(rule, secretly_running("raised"))
        assert reply(feed(rule, command("c1", "ack", SR)))["result"] == "ok"
        for i in range(12):  # rejected junk fills its own cache
            feed(rule, command(f"junk{i}", "ack", "no:such"))
        assert "c1" in rule.commands
        again = reply(feed(rule, command("c1", "ack", SR), now=T0 + 200))
        assert again["result"] == "duplicate"
    # more real ids than recent_commands within the time window: the old one is still known
    for i in range(15):
        feed(rule, alarm(source=f"cam-{i + 10}"))
        feed(rule, command(f"a{i}", "ack", f"cam-{i + 10}:seal_breach"))
    assert "c1" in rule.commands and reply(feed(rule, command("c1", "ack", SR)))["result"] == "duplicate"
    # a day later they go by count again
    feed(rule, alarm(source="cam-99", ts=T0 + 90_000), now=T0 + 90_000)
    feed(rule, command("late", "ack", "cam-99:seal_breach"), now=T0 + 90_000)
    assert "c1" not in rule.commands and len(rule.commands) == 10


def test_a_command_bound_to_an_earlier_occurrence_is_stale() -> None:
    rule = AlarmManager()
    feed(rule, secretly_running("raised"))
    first = iso_of(T0)
    feed(rule, command("c1", "ack", SR))
    feed(rule, secretly_running("cleared", T0 + 10), now=T0 + 10)
    feed(rule, command("c2", "close", SR), now=T0 + 11)
    feed(rule, secretly_running("raised", T0 + 100), now=T0 + 100)  # a new occurrence
    bound = command("c9", "ack", SR)
    bound.payload["args"] = {"raised_at": first}
    out = reply(feed(rule, bound, now=T0 + 101))
    assert out["result"] == "stale" and "earlier occurrence" in out["reason"], out
    assert rule.open[SR].progress == "raised"
    boolean = command("c11", "ack", SR)  # JSON true is not the count 1
    boolean.payload["args"] = {"raised_count": True}
    assert reply(feed(rule, boolean, now=T0 + 102))["result"] == "stale"
    fresh = command("c10", "ack", SR)
    fresh.payload["args"] = {"raised_at": iso_of(T0 + 100), "raised_count": 1}
    assert reply(feed(rule, fresh, now=T0 + 102))["result"] == "ok"


def iso_of(ts: float) -> str:
    from rules.alarm_life import iso

    return iso(ts)


def test_a_new_seal_breach_after_an_acknowledgement_is_a_new_occurrence() -> None:
    """A seal breach never clears (the camera only raises): once acknowledged, the next intrusion
    must be acknowledged on its own, not absorbed into the old one."""
    rule = AlarmManager()
    feed(rule, alarm())
    feed(rule, command("c1", "ack", "cam-1:seal_breach"))
    out = feed(rule, alarm())
    (ev,) = events(out, "alarm_state")
    assert (ev["from"], ev["state"], ev["occurrence"]) == ("acknowledged", "raised", "new")
    assert reply(feed(rule, command("c2", "ack", "cam-1:seal_breach")))["result"] == "ok"
