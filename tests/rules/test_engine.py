"""The rules engine on a real buffer (SQLite file, BufferService, writer loop): outputs commit
with their inputs and reach subscribers, state is restored at open, a failed transaction is
applied again exactly once, a raising rule is isolated, ticks commit on their own."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from buffer.boundary import BufferService
from buffer.record import Committed, Kind, Record
from config import load_settings_text
from rules import registry
from rules.engine import RulesEngine
from tests.rules.counting_rule import CountingRule
from tests.support.powercut import model
from tests.support.powercut.harness import REPO, build_shim


def settings(tmp_path: Path) -> Any:
    text = json.dumps(
        {"gateway": {"site": "s", "id": "gw"}, "buffer": {"path": str(tmp_path / "buf.db"), "flush_interval": "20ms"}}
    )
    return load_settings_text(text, base_dir=tmp_path)


def run(svc: BufferService, body: Callable[[BufferService], Coroutine[Any, Any, Any]]) -> Any:
    async def go() -> Any:
        await svc.open()
        try:
            return await body(svc)
        finally:
            await svc.close()

    return asyncio.run(go())


def rows(db: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    try:
        return [orjson.loads(b) for (b,) in con.execute("SELECT body FROM records ORDER BY seq")]
    finally:
        con.close()


def saved(db: Path, name: str = "counting") -> tuple[dict[str, Any], int] | None:
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT snapshot, seq FROM rule_state WHERE name = ?", (name,)).fetchone()
        return (orjson.loads(row[0]), row[1]) if row else None
    finally:
        con.close()


def tele(i: int) -> Record:
    return Record("meter", Kind.TELEMETRY, {"values": {"p": {"v": i, "q": "good"}}})


class Echo:
    """Records what it was given (to show what each rule sees) and re-emits alarms as events."""

    def __init__(self, name: str) -> None:
        self.name, self.seen, self.n = name, [], 0

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        self.seen.extend(c.record.payload for c in batch)
        self.n += len(batch)
        return [
            Record("echo", Kind.EVENT, {"event": "echo", "of": c.seq})
            for c in batch
            if c.record.payload.get("event") == "counted"
        ]

    def tick(self, now: float) -> list[Record]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"n": self.n}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.n = snapshot["n"]


# --------------------------------------------------------------------- (a)
def test_outputs_commit_with_their_inputs_and_reach_subscribers(tmp_path: Path) -> None:
    counting, echo = CountingRule(every=3), Echo("echo")
    seen: list[tuple[int, str]] = []
    svc = BufferService(settings(tmp_path))
    svc.attach_rules(RulesEngine([counting, echo]))

    async def body(svc: BufferService) -> None:
        svc.subscribe(lambda batch: seen.extend((c.seq, c.record.source) for c in batch))
        for i in range(7):
            svc.emit(tele(i))
        assert await svc.flush() == 7

    run(svc, body)
    docs = rows(tmp_path / "buf.db")
    # inputs 1..7, then counting's outputs (seqs after the inputs), then echo's answer to them
    assert [(d["seq"], d["source"]) for d in docs] == [(s, "meter") for s in range(1, 8)] + [
        (8, "counting"),
        (9, "counting"),
        (10, "echo"),
        (11, "echo"),
    ]
    assert [d["payload"]["count"] for d in docs[7:9]] == [3, 6]
    assert [d["payload"]["of"] for d in docs[9:]] == [8, 9]
    assert seen == [(d["seq"], d["source"]) for d in docs], "subscribers receive the outputs with the batch"
    # the later rule saw the earlier rule's outputs; the earlier one never saw the later one's
    assert sum(1 for p in echo.seen if p.get("event") == "counted") == 2
    assert saved(tmp_path / "buf.db") == ({"count": 7}, 11)
    assert saved(tmp_path / "buf.db", "echo") == ({"n": 9}, 11)
    assert all(d["prev"] == docs[i - 1]["chain"] for i, d in enumerate(docs) if i)


def test_state_is_restored_at_open(tmp_path: Path) -> None:
    for round_no in range(2):
        svc = BufferService(settings(tmp_path))
        rule = CountingRule(every=4)
        svc.attach_rules(RulesEngine([rule]))

        async def body(svc: BufferService) -> None:
            for i in range(5):
                svc.emit(tele(i))
            await svc.flush()

        run(svc, body)
        assert rule.count == 5 * (round_no + 1)
    counted = [d["payload"]["count"] for d in rows(tmp_path / "buf.db") if d["source"] == "counting"]
    assert counted == [4, 8]


def test_a_rolled_back_transaction_is_applied_again_exactly_once(tmp_path: Path) -> None:
    """A real SQLite error after the rules ran (a trigger refusing the rule_state write): the
    batch, the outputs and the state roll back together; the writer's retry counts once."""
    rule = CountingRule(every=2)
    svc = BufferService(settings(tmp_path))
    svc.attach_rules(RulesEngine([rule]))

    async def body(svc: BufferService) -> None:
        svc.emit(tele(0))
        await svc.flush()
        svc.store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON rule_state BEGIN SELECT RAISE(ABORT, 'test: refused'); END")
        svc.store.db.commit()
        for i in range(3):
            svc.emit(tele(i))
        assert await svc.flush() == 0 and svc.last_error and "refused" in svc.last_error
        assert rule.count == 1, "the rule is back at its committed state"
        svc.store.db.execute("DROP TRIGGER refuse")
        svc.store.db.commit()
        svc._backlog._retry_at = 0.0  # skip the writer's back-off
        assert await svc.flush() == 3

    run(svc, body)
    docs = rows(tmp_path / "buf.db")
    assert sum(d["source"] == "meter" for d in docs) == 4 and rule.count == 4
    assert [d["payload"]["count"] for d in docs if d["source"] == "counting"] == [2, 4]
    assert saved(tmp_path / "buf.db")[0] == {"count": 4}


class Ticker:
    name = "ticker"

    def __init__(self) -> None:
        self.ticks = 0

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        return []

    def tick(self, now: float) -> list[Record]:
        self.ticks += 1
        if self.ticks == 2:
            return [Record("site", Kind.ALARM, {"alarm": "late", "state": "raised", "id": "ticker:late:site"})]
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"ticks": self.ticks}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.ticks = snapshot["ticks"]


def test_tick_is_a_commit_without_inputs_and_the_next_rule_sees_its_alarm(tmp_path: Path) -> None:
    echo = Echo("echo")
    seen: list[Committed] = []
    svc = BufferService(settings(tmp_path))
    svc.attach_rules(RulesEngine([Ticker(), echo]))

    async def body(svc: BufferService) -> None:
        svc.subscribe(seen.extend)
        stop = asyncio.Event()
        writer = asyncio.create_task(svc.run(stop))
        await asyncio.sleep(2.6)  # the writer ticks about once a second
        stop.set()
        await writer

    run(svc, body)
    assert [c.record.payload.get("alarm") for c in seen] == ["late"]
    assert echo.seen == [seen[0].record.payload], "the alarm manager (last) sees an alarm raised in a tick"
    state = saved(tmp_path / "buf.db", "ticker")
    assert state is not None and state[0]["ticks"] >= 2


def test_a_derived_alarm_from_telemetry_is_fsynced(tmp_path: Path) -> None:
    """Telemetry commits at NORMAL (not fsynced); an alarm a rule derives from it has power_loss
    durability, so the store fsyncs the WAL before returning. Checked on the disk a power cut
    would leave (the LD_PRELOAD write log of tests/support/powercut), the process ending
    right after the commit returned."""
    d = tmp_path / "d"
    d.mkdir()
    log_path = tmp_path / "log"
    code = """
import os, sys
from buffer.record import Kind, Record
from buffer.store import BufferStore
from rules.engine import RulesEngine

class Alarmist:
    name = "alarmist"
    def apply(self, batch, now):
        return [Record("site", Kind.ALARM, {"alarm": "x", "state": "raised"}) for c in batch if c.record.payload.get("go")]
    def tick(self, now): return []
    def snapshot(self): return {}
    def restore(self, snapshot): pass

store = BufferStore(sys.argv[1] + "/b.db", gateway="g", site="s", max_unsynced_s=0,
                    processor=RulesEngine([Alarmist()]))
store.append([Record("m", Kind.TELEMETRY, {"v": 1})])
store.append([Record("m", Kind.TELEMETRY, {"v": 2, "go": True})])
os._exit(0)  # the power goes right after the commit returned
"""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LD_PRELOAD": str(build_shim(tmp_path / "shim")),
        "POWERCUT_DIR": str(d),
        "POWERCUT_LOG": str(log_path),
    }
    subprocess.run([sys.executable, "-c", code, str(d)], env=env, check=True, cwd=REPO)
    disk = model.Disk(d, {})
    disk.apply(model.parse(log_path.read_bytes()))
    image = tmp_path / "image"
    model.write_dir(image, disk.image())
    stored = [(d["source"], d["payload"]) for d in rows(image / "b.db")]
    assert ("site", {"alarm": "x", "state": "raised"}) in stored, "the derived alarm survives the cut"
    assert [p["v"] for s, p in stored if s == "m"] == [1, 2], "and so does every commit before it"


# --------------------------------------------------------------------- (d)
class Raising:
    """Fails on records that say so, after changing its state (which must be undone)."""

    name = "raising"

    def __init__(self) -> None:
        self.n = 0

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out = []
        for c in batch:
            self.n += 1
            if c.record.payload.get("boom"):
                raise RuntimeError("boom in the rule")
            if c.record.payload.get("bad_output"):
                out.append(Record("site", Kind.EVENT, {"event": "x", "when": now, "bad": {1, 2}}))
        return out

    def tick(self, now: float) -> list[Record]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"n": self.n}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.n = snapshot["n"]


def test_a_raising_rule_is_isolated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raising, counting = Raising(), CountingRule(every=1000)
    svc = BufferService(settings(tmp_path))
    engine = RulesEngine([raising, counting])
    svc.attach_rules(engine)

    async def body(svc: BufferService) -> None:
        stop = asyncio.Event()
        writer = asyncio.create_task(svc.run(stop))
        for i in range(30):
            svc.emit(tele(i))
            if i in (5, 17):
                svc.emit(Record("meter", Kind.TELEMETRY, {"boom": True}))
            if i == 11:
                svc.emit(Record("meter", Kind.TELEMETRY, {"bad_output": True}))
            await asyncio.sleep(0.03)  # several writer rounds, the failures in some of them
        await asyncio.sleep(0.2)
        stop.set()
        await writer

    with caplog.at_level(logging.ERROR, logger="headframe.rules"):
        run(svc, body)
    docs = rows(tmp_path / "buf.db")
    tele_rows = [d for d in docs if d["kind"] == "telemetry"]
    assert len(tele_rows) == 33, "the writer went on committing"
    assert counting.count == 33, "the other rule saw every record"
    failed = [d["payload"] for d in docs if d["payload"].get("event") == "rule_failed"]
    assert failed and failed[0]["rule"] == "raising" and "boom in the rule" in failed[0]["error"]
    assert "rule raising failed" in caplog.text
    # only the poisoned records were skipped (the engine retried each failed batch record by
    # record): the 30 good records in the same batches counted, the 3 hostile ones did not
    state = saved(tmp_path / "buf.db", "raising")
    assert state is not None and state[0]["n"] == raising.n == 30
    assert engine.failures["raising"].skipped == 3
    assert not any(d["payload"].get("event") == "x" for d in docs), "an output the store cannot take is dropped"


def test_engine_refuses_duplicate_or_missing_names() -> None:
    with pytest.raises(ValueError, match="two rules are named 'counting'"):
        RulesEngine([CountingRule(), CountingRule()])
    with pytest.raises(ValueError, match="has no name"):
        RulesEngine([object()])  # type: ignore[list-item]


def test_registry_runs_extra_test_rules_before_the_alarm_manager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(registry, "FAMILIES", ("rules.alarms:build",))
    monkeypatch.setenv("HEADFRAME_EXTRA_RULES", "tests.rules.counting_rule")
    assert registry.entries() == ["tests.rules.counting_rule", "rules.alarms:build"]
    monkeypatch.setattr(registry, "FAMILIES", ())
    rules = registry.build(settings(tmp_path))
    assert [r.name for r in rules] == ["counting"]
