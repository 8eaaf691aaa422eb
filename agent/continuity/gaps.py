"""Gap records and the gateway-dark alarm: pure functions from what was saved to the payload.

Kept free of I/O so each cause and each energy case can be checked without a process.
"""

from __future__ import annotations

import time
from typing import Any

from agent.continuity.state import CameraFault, EnergyReading
from agent.textfmt import human_duration

#: ``previous_run.ended`` (boot evidence) -> gap cause
CAUSE_BY_ENDED = {
    "clean": "clean_stop",
    "mains_failure": "mains_failure",
    "unknown": "unplugged",
    "crash": "crash",
    "watchdog": "watchdog",
}
CAUSES = ("link_down", "clean_stop", "mains_failure", "unplugged", "crash", "watchdog", "clock_jump")


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC with milliseconds, the format of every record's ``ts``."""
    if ts is None:
        return None
    sec = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)) + f"{int((ts - sec) * 1000):03d}Z"


def start_cause(ended: str, last_ts: float | None, now: float) -> str:
    """The cause of the gap before this start: the wall clock running backwards beats the rest,
    since then no duration or order in the record stream can be trusted across the gap."""
    if last_ts is not None and now < last_ts:
        return "clock_jump"
    return CAUSE_BY_ENDED.get(ended, "unplugged")


#: a "before" reading older than this before the gap began is not used for a delta: the meter was
#: not answering then, and the delta would count consumption while the gateway was online
STALE_BEFORE_S = 900.0


def energy_entries(
    expected: list[str],
    before: dict[str, EnergyReading],
    after: dict[str, float],
    why_missing: dict[str, str],
    gap_start: float | None = None,
) -> list[dict[str, Any]]:
    """One entry per meter point: before/after/delta, or ``unknown`` with the reason (never a guess)."""
    out: list[dict[str, Any]] = []
    for key in sorted(set(expected) | set(before)):
        source, _, point = key.partition("/")
        entry: dict[str, Any] = {"source": source, "point": point}
        old, new = before.get(key), after.get(key)
        if old is not None:
            entry["before_kwh"] = round(old.kwh, 6)
            entry["before_ts"] = iso(old.ts)
        if new is not None:
            entry["after_kwh"] = round(new, 6)
        if key not in expected:
            entry["unknown"] = "meter point no longer configured"
        elif new is None:
            entry["unknown"] = f"meter not answering ({why_missing.get(key, 'no good reading after start')})"
        elif old is None:
            entry["unknown"] = "no reading before the gap (meter new, or never answered before)"
        elif gap_start is not None and gap_start - old.ts > STALE_BEFORE_S:
            entry["unknown"] = (
                f"the last good reading was {human_duration(gap_start - old.ts)} before the gap began "
                "(the meter was not answering then): no delta for the gap alone"
            )
        elif new < old.kwh:
            entry["unknown"] = "counter went backwards (meter replaced or reset?)"
        else:
            entry["delta_kwh"] = round(new - old.kwh, 6)
        out.append(entry)
    return out


def faults_overlapping(faults: list[CameraFault], start: float | None, end: float) -> list[dict[str, Any]]:
    """Camera tamper/lost periods that overlap [start, end] (open periods: ``to`` null)."""
    out = []
    for f in faults:
        if (f.end is None or start is None or f.end >= start) and f.start <= end:
            item: dict[str, Any] = {"source": f.source, "alarm": f.alarm, "from": iso(f.start), "to": iso(f.end)}
            if f.alarm == "camera_tamper":
                item["kind"] = f.kind
            out.append(item)
    return out


def dark_alarm(gap: dict[str, Any], threshold_kwh: float) -> dict[str, Any] | None:
    """The ``gateway_dark_while_site_ran`` alarm for a gap, or None.

    A link outage is not "dark": the gateway kept recording, so the energy is in the stream.
    The energy is the sum over meters of each meter's largest counter delta.
    """
    if gap["cause"] == "link_down":
        return None
    per_meter: dict[str, float] = {}
    for e in gap.get("energy", []):  # import and total counters of one meter move together: count once
        if "delta_kwh" in e:
            per_meter[e["source"]] = max(per_meter.get(e["source"], 0.0), e["delta_kwh"])
    total = sum(per_meter.values())
    if total <= threshold_kwh:
        return None
    duration = gap.get("duration_s")
    dark = human_duration(duration) if duration is not None else "an unknown time"
    return {
        "alarm": "gateway_dark_while_site_ran",
        "state": "raised",
        "duration_s": duration,
        "delta_kwh": round(total, 3),
        "cause": gap["cause"],
        "from": gap["from"],
        "to": gap["to"],
        "text": f"gateway dark for {dark} while the site drew {total:.6g} kWh",
    }
