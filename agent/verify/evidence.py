"""The gateway's own explanations in the stream: drops, gaps and other evidence records (issue 10).

These are ordinary chained records with ``source: "agent"``; they are believed only as far as
their own hash verified (a ``records_dropped`` or ``gap`` that fails its hash explains nothing and
is not listed), and only if their fields have the types the agent writes.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import datetime
from typing import Any

from agent.verify.chaincheck import Version
from agent.verify.model import Drop, Gap, GatewayReport, Note, Problem
from agent.verify.reader import Entry
from agent.verify.schema import malformed


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def collect(report: GatewayReport, reps: dict[int, Version]) -> None:
    """Fill ``report.drops``, ``gaps`` and ``notes`` from the agent's evidence records.

    Only records whose own hash verified are evidence (with no key nothing is authenticated and
    the verdict says so); a record with wrong field types is reported and explains nothing.
    """
    for seq, v in sorted(reps.items()):
        doc = v.doc
        payload = doc.get("payload")
        if doc.get("source") != "agent" or not isinstance(payload, dict):
            continue
        name = payload.get("event") or payload.get("alarm")
        if not isinstance(name, str) or not (v.ok or report.key_unusable):
            continue  # an altered / unkeyed record is already a problem; it explains nothing
        ts = str(doc["ts"])
        why = malformed(name, payload)
        if why is not None:
            report.problems.append(
                Problem(
                    "malformed",
                    f"malformed evidence record seq {seq} ({name}): {why}; the gateway never writes this, so it explains nothing",
                    seq,
                    ts,
                    v.entry.origin,
                )
            )
            continue
        if doc.get("kind") == "event" and name == "records_dropped":
            _drop(report, seq, ts, payload)
        elif doc.get("kind") == "event" and name == "gap":
            report.gaps.append(_gap(seq, ts, payload))
        elif name == "agent_started":
            prev = payload.get("previous_run") or {}
            report.notes.append(
                Note(
                    seq,
                    ts,
                    f"agent started; previous run ended: {prev.get('ended', '?')}"
                    + (f" ({prev['detail']})" if prev.get("detail") else ""),
                )
            )
        elif name in ("mains_lost", "gateway_dark_while_site_ran"):
            text = payload.get("text") or f"{name} {payload.get('state') or ''}".strip()
            report.notes.append(Note(seq, ts, f"alarm: {text}"))
        elif name == "power_failing":
            report.notes.append(Note(seq, ts, f"power failing (battery {payload.get('battery_charge', '?')} %): clean stop"))
        elif name in ("config_applied", "config_reload_rejected"):
            changed = payload.get("changed") or []
            report.notes.append(
                Note(
                    seq,
                    ts,
                    f"{name} ({payload.get('trigger', '?')}), config "
                    f"{payload.get('hash', '?')}" + (f", changed: {', '.join(map(str, changed))}" if changed else ""),
                )
            )


def _drop(report: GatewayReport, seq: int, ts: str, p: dict[str, Any]) -> None:
    ranges = list(p.get("ranges") or [])
    assigned = p.get("seqs_assigned") is not False
    count = p["count"]
    report.drops.append(Drop(seq, ts, p["reason"], count, dict(p.get("by_kind") or {}), ranges, assigned, True))
    covered = sum(r["last"] - r["first"] + 1 for r in ranges)
    if assigned and covered != count:
        report.notes.append(
            Note(
                seq,
                ts,
                f"records_dropped says {count} record(s) but its ranges cover {covered} "
                "(the rest may be in another records_dropped record)",
            )
        )


def power_loss_exposure(report: GatewayReport, reps: dict[int, Version]) -> None:
    """How many seqs inside each power_loss range were received anyway (sent before the cut).

    The range explains every seq in it (the count is an upper bound), so if one of those received
    records is deleted later, nothing shows it. The reader is told; the verdict does not change.
    """
    present = sorted(reps)
    for d in report.drops:
        if d.reason != "power_loss" or not d.seqs_assigned:
            continue
        d.received_inside = sum(
            bisect.bisect_right(present, r["last"]) - bisect.bisect_left(present, r["first"]) for r in d.ranges
        )
        if d.received_inside:
            report.notes.append(
                Note(
                    d.seq,
                    d.ts,
                    (
                        f"{d.received_inside} seq(s) inside the power_loss range of records_dropped seq {d.seq} were "
                        "received (sent before the power cut). The range explains every seq in it, so a deletion among "
                        "those received records cannot be seen"
                    ),
                )
            )


def _gap(seq: int, ts: str, p: dict[str, Any]) -> Gap:
    frm, to = p.get("from") or {}, p.get("to") or {}
    return Gap(
        seq,
        ts,
        p["cause"],
        frm.get("seq"),
        frm.get("ts"),
        to.get("seq"),
        to.get("ts"),
        _num(p.get("duration_s")),
        list(p.get("energy") or []),
        list(p.get("camera_faults") or []),
    )


def status_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """Retained status / last-will messages: shown for context, never part of the chain."""
    rows = []
    for e in entries:
        d = e.doc
        rows.append(
            {
                "where": e.origin,
                "topic": e.topic,
                "received": e.received,
                "status": d.get("status"),
                "reason": d.get("reason"),
                "since": d.get("since") or d.get("session_started"),
                "last_seen_by_gateway": d.get("last_seen_by_gateway"),
                "previous_session": d.get("previous_session"),
            }
        )
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
        report.silences.append(
            {
                "after_seq": a,
                "before_seq": b,
                "from_ts": reps[a].doc["ts"],
                "to_ts": reps[b].doc["ts"],
                "duration_s": round(tb - ta, 3),
            }
        )
