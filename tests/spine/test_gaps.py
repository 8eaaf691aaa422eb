"""Energy across a gap: a reading from long before the gap is not used as its 'before' value."""

from __future__ import annotations

from agent.continuity.gaps import STALE_BEFORE_S, energy_entries
from agent.continuity.state import EnergyReading


def test_a_before_reading_long_before_the_gap_gives_unknown_not_a_delta() -> None:
    start = 1_800_000_000.0
    before = {
        "m1/e": EnergyReading(1000.0, start - 30, 10),  # fresh: the meter answered 30 s before the gap
        "m2/e": EnergyReading(500.0, start - 3 * 86400, 5),  # dead for 3 days while the gateway ran
    }
    after = {"m1/e": 1010.0, "m2/e": 4800.0}
    entries = {e["source"]: e for e in energy_entries(["m1/e", "m2/e"], before, after, {}, start)}
    assert entries["m1"]["delta_kwh"] == 10.0 and entries["m1"]["before_ts"].endswith("Z")
    assert "delta_kwh" not in entries["m2"] and "3 d 0 h 0 min before the gap" in entries["m2"]["unknown"]
    # at the threshold itself a reading still counts
    edge = {"m1/e": EnergyReading(1000.0, start - STALE_BEFORE_S, 10)}
    assert energy_entries(["m1/e"], edge, {"m1/e": 1001.0}, {}, start)[0]["delta_kwh"] == 1.0
