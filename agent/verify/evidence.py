"""The gateway's own explanations in the stream: drops, gaps and other evidence records (issue 10).

These are ordinary chained records with ``source: "agent"``; they are believed only as far as
their own hash verified (a ``records_dropped`` that fails its hash explains nothing).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from agent.verify.chaincheck import Version
from agent.verify.model import Drop, Gap, GatewayReport, Note, Problem
from agent.verify.reader import Entry


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def collect(report: GatewayReport, reps: dict[int, Version]) -> None:
    """Fill ``report.drops``, ``gaps`` and ``notes`` from the agent's evidence records."""
    key_unusable = any(p.code == "key" for p in report.problems)
    for seq, v in sorted(reps.items()):
        doc = v.doc
        payload = doc.get("payload")
        if doc.get("source") != "agent" or not isinstance(payload, dict):
            continue
        ts = str(doc["ts"])
        name = payload.get("event") or payload.get("alarm")
        if doc.get("kind") == "event" and name == "records_dropped":
            _drop(report, seq, ts, payload, trusted=v.ok or key_unusable, origin=v.entry.origin)
        elif doc.get("kind") == "event" and name == "gap":
            report.gaps.append(_gap(seq, ts, payload))
        elif name == "agent_started":
            prev = payload.get("previous_run") or {}
            report.notes.append(Note(seq, ts, f"agent started; previous run ended: {prev.get('ended', '?')}"
                                     + (f" ({prev['detail']})" if prev.get("detail") else "")))
        elif name in ("mains_lost", "gateway_dark_while_site_ran"):
            text = payload.get("text") or f"{name} {payload.get('state', '')}".strip()
            report.notes.append(Note(seq, ts, f"alarm: {text}"))
        elif name == "power_failing":
            report.notes.append(Note(seq, ts, f"power failing (battery {payload.get('battery_charge', '?')} %): "
                                     "clean stop"))
        elif name in ("config_applied", "config_reload_rejected"):
            changed = payload.get("changed") or []
            report.notes.append(Note(seq, ts, f"{name} ({payload.get('trigger', '?')}), config "
                                     f"{payload.get('hash', '?')}" + (f", changed: {', '.join(map(str, changed))}"
                                                                      if changed else "")))


def _drop(report: GatewayReport, seq: int, ts: str, p: dict[str, Any], *, trusted: bool, origin: str) -> None:
    ranges = [r for r in p.get("ranges") or [] if isinstance(r, dict)]
    assigned = p.get("seqs_assigned", True) is not False
    count = _int(p.get("count")) or 0
    report.drops.append(Drop(seq, ts, str(p.get("reason", "?")), count,
                             {str(k): v for k, v in (p.get("by_kind") or {}).items()}, ranges, assigned, trusted))
    if not trusted:
        report.problems.append(Problem(
            "altered", "a records_dropped record whose own hash does not verify: the drop it claims is not "
            "believed and explains no missing seq", seq, ts, origin))
        return
    covered = sum(r["last"] - r["first"] + 1 for r in ranges
                  if isinstance(r.get("first"), int) and isinstance(r.get("last"), int))
    if assigned and covered != count:
        report.notes.append(Note(seq, ts, f"records_dropped says {count} record(s) but its ranges cover {covered} "
                                 "(the rest may be in another records_dropped record)"))


def _gap(seq: int, ts: str, p: dict[str, Any]) -> Gap:
    frm, to = p.get("from") or {}, p.get("to") or {}
    return Gap(seq, ts, str(p.get("cause", "?")), _int(frm.get("seq")), frm.get("ts"), _int(to.get("seq")),
               to.get("ts"), _num(p.get("duration_s")),
               [e for e in p.get("energy") or [] if isinstance(e, dict)],
               [c for c in p.get("camera_faults") or [] if isinstance(c, dict)])


def status_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """Retained status / last-will messages: shown for context, never part of the chain."""
    rows = []
    for e in entries:
        d = e.doc
        rows.append({"where": e.origin, "topic": e.topic, "received": e.received, "status": d.get("status"),
                     "reason": d.get("reason"), "since": d.get("since") or d.get("session_started"),
                     "last_seen_by_gateway": d.get("last_seen_by_gateway"),
                     "previous_session": d.get("previous_session")})
    return rows


def _epoch(ts: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(ts)).timestamp()
    except ValueError:
        return None


def silences(report: GatewayReport, reps: dict[int, Version], threshold_s: float) -> None:
    """Consecutive records further apart in time than ``threshold_s`` with no gap record spanning them.

    Seqs can be continuous while the gateway was dark (it was off, then went on counting), so
    continuity alone does not show an outage; the gateway should explain one with a gap record.
    This lists the spells it did not explain. They are facts for the reader, not tampering.
    """
    explained = [(g.from_seq, g.to_seq) for g in report.gaps if g.from_seq is not None and g.to_seq is not None]
    seqs = sorted(reps)
    for a, b in itertools.pairwise(seqs):
        ta, tb = _epoch(reps[a].doc["ts"]), _epoch(reps[b].doc["ts"])
        if ta is None or tb is None or tb - ta <= threshold_s:
            continue
        if any(lo is not None and hi is not None and lo <= a and b <= hi for lo, hi in explained):
            continue
        report.silences.append({"after_seq": a, "before_seq": b, "from_ts": reps[a].doc["ts"],
                                "to_ts": reps[b].doc["ts"], "duration_s": round(tb - ta, 3)})
