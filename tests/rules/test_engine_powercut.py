"""A rule's state across power cuts: the count it saved always equals the telemetry that survived.

The power-cut harness (tests/support/powercut, docs/buffer.md "Power loss") runs the real
``BufferStore`` with the rules engine and the test ``CountingRule`` (driver ``--rules``), cuts
the power at random moments (some cuts torn) and rebuilds the disk as it would be. Telemetry
commits at ``synchronous=NORMAL``, so cuts lose recent telemetry; the count, saved in the same
transaction, must lose exactly as much: after every cut it equals the telemetry records that
survived (still stored, or acked before). The harness's own checks hold too, including that
the ``counted`` events (power_loss durability, derived from NORMAL commits) are never lost.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from config.spine import PerKindDurability
from tests.support.powercut.harness import DB, Inspection, PowerCuts

CUTS = 12


class CountingCuts(PowerCuts):
    def __init__(self, work: Path, **kw: Any) -> None:
        super().__init__(work, **kw)
        self.driver_args = ["--rules"]
        self.survived: set[int] = set()  # telemetry seqs that survived their round
        self.counted_events = 0

    def _check(self, round_no: int, reports: list[dict[str, Any]], after: Inspection, cut_time: float, plain_kill: bool) -> None:
        super()._check(round_no, reports, after, cut_time, plain_kill)
        for r in reports:
            for seq, kind, *_ in r.get("c", ()):
                if kind == "telemetry" and seq <= after.last_seq:
                    self.survived.add(seq)
        con = sqlite3.connect(self.work / "check" / DB)
        try:
            row = con.execute("SELECT snapshot FROM rule_state WHERE name = 'counting'").fetchone()
        except sqlite3.OperationalError:  # cut before the engine created its table
            row = None
        finally:
            con.close()
        count = orjson.loads(row[0])["count"] if row else 0
        if count != len(self.survived):
            self.problem(round_no, f"the rule saved {count}, but {len(self.survived)} telemetry records survived")
        self.counted_events = sum(1 for d in after.bodies.values() if d["source"] == "counting")


def test_rule_state_across_power_cuts(tmp_path: Path) -> None:
    cuts = CountingCuts(tmp_path, seed=20261126, durability=PerKindDurability().model_dump())
    figures = cuts.run(CUTS)
    assert figures.problems == [], "\n".join(figures.problems[:20])
    assert figures.lost["process_crash"] > 0, "the cuts must bite: some telemetry lost, and its count with it"
    assert figures.lost["power_loss"] == 0
    assert len(cuts.survived) > 500
