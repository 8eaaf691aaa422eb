"""``restore(snapshot)`` must replace a rule's whole state: the engine rolls a rule back that way
after a failed commit and before retrying a batch record by record. A rule that only *adds* what
the snapshot holds keeps effects of a transaction that never committed (a permit that was never
recorded, an alarm nobody saw)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from buffer.record import Committed, Kind, Record
from config import load_settings
from rules import registry
from rules.engine import RulesEngine
from tests.rules.test_hotwork import T0, Feed, command, events, presence, rule

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def _traffic(t: float) -> list[Record]:
    """Records every family of the rules example reacts to."""
    return [
        Record(
            "cam-cage", Kind.EVENT, {"event": "line_crossing", "line": "gate", "direction": "in", "shaft": "main-shaft"}, ts=t
        ),
        Record("meter-north", Kind.TELEMETRY, {"values": {"p_total": {"v": 80.0, "q": "good", "unit": "kW"}}}, ts=t),
        Record("plc-hoist", Kind.TELEMETRY, {"values": {"hoist_running": {"v": True, "q": "good"}}}, ts=t),
        Record("cam-face", Kind.TELEMETRY, {"zones": {"face-1": {"count": 12}}}, ts=t),
        Record("agent", Kind.ALARM, {"alarm": "buffer_corrupt", "state": "raised"}, ts=t),
        Record(
            "platform", Kind.EVENT, {"event": "command", "id": "c-1", "command": "ack", "target": "agent:buffer_corrupt"}, ts=t
        ),
    ]


def test_every_rule_returns_to_its_snapshot_exactly() -> None:
    rules = registry.build(load_settings(EXAMPLES / "rules.yaml"))
    assert {r.name for r in rules} >= {"headcount", "rectification", "secretly_running:north", "belt_scale:main-belt", "alarms"}
    t = 1_790_000_000.0
    changed = set()
    for r in rules:
        before = r.snapshot()
        batch = [Committed(i + 1, rec, "") for i, rec in enumerate(_traffic(t))]
        r.apply(batch, t)
        r.tick(t + 3600)
        if r.snapshot() != before:
            changed.add(r.name)
        r.restore(before)
        assert r.snapshot() == before, f"{r.name}: restore kept state from an uncommitted apply"
    assert {"headcount", "alarms"} <= changed, changed  # the traffic did move state that had to be undone


def test_a_rolled_back_permit_is_gone_and_the_person_raises_the_alarm() -> None:
    hotwork, feed, seq = rule(), Feed(), [1000]

    def insert(recs: list[Record]) -> list[Committed]:
        out = []
        for rec in recs:
            seq[0] += 1
            out.append(Committed(seq[0], rec, ""))
        return out

    engine = RulesEngine([hotwork])
    engine.open(sqlite3.connect(":memory:"), insert)
    args: dict[str, Any] = {"number": "HW-1", "issuer": "li", "duration": "2h"}
    engine.process(feed(command("d-1", "permit", "weld-1", args, T0)), T0)
    engine.after_rollback()  # the commit failed: the command and its reply were never stored
    assert list(hotwork.permits) == [] and list(hotwork.commands) == []
    out = engine.process(feed(presence(True, T0 + 60)), T0 + 60)
    engine.after_commit()
    out += engine.tick(T0 + 200)
    engine.after_commit()
    assert [e["state"] for e in events(out, "hotwork_person_outside_permit")] == ["raised"]


def test_the_retry_without_a_poisoned_record_keeps_the_batch_together() -> None:
    """A seal alarm and its suppression commit together; a poisoned third record must not make the
    alarm manager see them one at a time (that would open a life for approved work)."""
    from rules.alarms import AlarmManager

    class Tripping(AlarmManager):
        def apply(self, batch: Any, now: float) -> list[Record]:
            if any(c.record.payload.get("poison") for c in batch):
                raise KeyError("a record this rule trips on")
            return super().apply(batch, now)

    seq = [100]

    def insert(recs: list[Record]) -> list[Committed]:
        out = []
        for rec in recs:
            seq[0] += 1
            out.append(Committed(seq[0], rec, ""))
        return out

    t = 1_764_036_600.0
    seal = Record("cam-seal", Kind.ALARM, {"alarm": "seal_breach", "state": "raised", "objects": 1}, ts=t)
    suppressed = Record("cam-seal", Kind.EVENT, {"event": "seal_alarm_suppressed", "alarm_seq": 1, "camera": "cam-seal"}, ts=t)
    poison = Record("cam-x", Kind.EVENT, {"event": "x", "poison": 1}, ts=t)
    manager = Tripping()
    engine = RulesEngine([manager])
    engine.open(sqlite3.connect(":memory:"), insert)
    engine.process([Committed(1, seal, ""), Committed(2, suppressed, ""), Committed(3, poison, "")], t)
    assert manager.open == {}, list(manager.open)
