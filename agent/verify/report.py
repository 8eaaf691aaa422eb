"""Render a verification for a safety inspector (plain text) or for a program (``--json``)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from agent.verify.model import Drop, Gap, GatewayReport, Report
from agent.verify.timefmt import duration, when

CAUSES = {
    "link_down": "uplink down while the gateway kept running (records were buffered and sent afterwards)",
    "clean_stop": "the gateway was stopped cleanly",
    "mains_failure": "mains power failure (recorded by the UPS)",
    "unplugged": "switched off or unplugged (no shutdown was recorded)",
    "crash": "the agent crashed while the gateway kept running",
    "watchdog": "the agent hung and was killed by the watchdog",
    "clock_jump": "the gateway clock jumped",
}
REASONS = {
    "byte_cap": "buffer full: the oldest low-priority records were removed to make room",
    "ttl": "kept unsent longer than their retention time (TTL)",
    "disk_full": "disk full",
    "writer_error": "the buffer could not write them",
    "power_loss": (
        "numbering resumed after a power cut (or a crash and reboot): these seqs were reserved before it; "
        "any committed only to the page cache were lost, the rest were never used (the count is an upper bound)"
    ),
}
NO_KEY = (
    "No chain key for this gateway: only the links between records (prev/chain) and the sequence "
    "were checked. The content of the records cannot be authenticated without the gateway's key: "
    "anyone can build a chain that links, with any content. Give the gateway's key with "
    "--key-file GATEWAY=FILE for a full check."
)


def render_text(report: Report) -> str:
    out = [
        f"Headframe stream verification, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"Overall verdict: {report.verdict}",
        "",
    ]
    out.append("Inputs:")
    for f in report.inputs:
        bad = f", {f['unreadable_lines']} unreadable line(s)" if f["unreadable_lines"] else ""
        out.append(f"  {f['label']}: {f['path']} ({f['records']} record message(s), {f['status']} status message(s){bad})")
    out.append(
        "Chain key: "
        + (
            f"given ({report.keys} key file(s)); each record checked with HMAC-SHA256 under "
            "the one key bound to its gateway and seq"
            if report.key_given
            else "NOT given"
        )
    )
    if report.input_problems:
        out += ["", f"Lines that could not be read ({len(report.input_problems)}):"]
        out += [f"  - {p['where']}: {p['what']}" for p in report.input_problems]
    if not report.gateways:
        out += ["", "No gateway records found in the input."]
    for gw in report.gateways:
        out += ["", *_gateway(gw)]
    return "\n".join(out) + "\n"


def _gateway(gw: GatewayReport) -> list[str]:
    out = [f"Gateway {gw.site}/{gw.gateway}: {gw.verdict}"]
    if gw.records:
        out.append(f"  Period covered: {when(gw.first_ts)} to {when(gw.last_ts)} (seq {gw.first_seq} to {gw.last_seq})")
    dup = f"; {gw.duplicates} identical repeated deliveries (allowed)" if gw.duplicates else ""
    out.append(f"  Records: {gw.records} distinct{dup}")
    if gw.records and gw.key_mode == "none":
        out.append("  " + NO_KEY)
    for k in gw.keys:
        upto = f"to seq {k['to_seq']}" if k["to_seq"] is not None else "on"
        got = (
            f"verified {k['verified']} record(s), seqs {k['first_verified']}–{k['last_verified']}"
            if k["verified"]
            else "verified no record"
        )
        out.append(f"  Key {k['file']} (applies from seq {k['from_seq']} {upto}): {got}")
    if not gw.records:
        out.append("  No chained records from this gateway in the input (only status messages).")
    if gw.problems:
        out.append(f"  Problems ({len(gw.problems)}):")
        for p in gw.problems:
            head = f"seq {p.seq}" + (f" ({when(p.ts)})" if p.ts else "") + ": " if p.seq is not None else ""
            out.append(f"    - {head}{p.text}" + (f" [{p.where}]" if p.where else ""))
    elif gw.records and gw.key_mode == "none":
        out.append("  No problems in the links or the sequence; the content is NOT authenticated (no key).")
    elif gw.records:
        out.append(
            "  No problems: every record matches its hash, every link holds, every seq is accounted for"
            + (", except the capture edges below." if gw.edges else ".")
        )
    if gw.edges:
        out.append(f"  Not proven (capture edges) ({sum(e['last'] - e['first'] + 1 for e in gw.edges)} seq(s)):")
        out += [f"    - {e['text']}" for e in gw.edges]
    out.append(f"  Gaps explained by the gateway ({len(gw.gaps)}):" if gw.gaps else "  Gaps explained by the gateway: none")
    for g in gw.gaps:
        out += _gap(g)
    if gw.silences:
        out.append(f"  Silences the gateway did not explain (no gap record) ({len(gw.silences)}):")
        out += [
            f"    - {when(q['from_ts'])} to {when(q['to_ts'])}, {duration(q['duration_s'])}: nothing between seq "
            f"{q['after_seq']} and seq {q['before_seq']}"
            for q in gw.silences
        ]
    out.append(f"  Records dropped by the gateway ({len(gw.drops)}):" if gw.drops else "  Records dropped by the gateway: none")
    for d in gw.drops:
        out.append("    - " + _drop(d))
    if gw.notes:
        out.append(f"  Other evidence records ({len(gw.notes)}):")
        out += [f"    - seq {n.seq} ({when(n.ts)}): {n.text}" for n in gw.notes]
    if gw.status:
        out.append(f"  Status messages (retained status / last will; not part of the chain) ({len(gw.status)}):")
        for s in gw.status:
            extra = "".join(f", {k.replace('_', ' ')} {when(s[k])}" for k in ("since", "last_seen_by_gateway") if s.get(k))
            recv = (
                f", received {when(s['received']) if isinstance(s['received'], str) else s['received']}"
                if s.get("received")
                else ""
            )
            prev = s.get("previous_session")
            if isinstance(prev, dict) and prev.get("lost_at"):
                down = prev.get("down_s")  # a status message is hostile input too: only a number is a duration
                down = down if isinstance(down, (int, float)) and not isinstance(down, bool) else None
                extra += (
                    f"; previous session lost {when(prev['lost_at'])}, down "
                    f"{duration(down)} ({prev.get('reason') or 'reason unknown'})"
                )
            out.append(
                f"    - {s.get('status')}" + (f" ({s['reason']})" if s.get("reason") else "") + f"{extra}{recv} [{s['where']}]"
            )
    return out


def _gap(g: Gap) -> list[str]:
    span = f"{when(g.from_ts)} to {when(g.to_ts)}, {duration(g.duration_s)}"
    seqs = f"seq {g.from_seq} to {g.to_seq}" if g.from_seq is not None else "seq unknown"
    out = [f"    - {span} ({seqs}): {CAUSES.get(g.cause, g.cause)} [gap record seq {g.seq}]"]
    for e in g.energy:
        name = f"{e.get('source', '?')} {e.get('point', '')}".strip()
        if "unknown" in e or e.get("delta_kwh") is None:
            out.append(f"        energy {name}: unknown ({e.get('unknown', 'no reading')})")
        else:
            out.append(
                f"        energy {name}: {e.get('before_kwh')} -> {e.get('after_kwh')} kWh, "
                f"the site drew {e.get('delta_kwh')} kWh meanwhile"
            )
    for c in g.camera_faults:
        out.append(
            f"        camera {c.get('source', '?')}: {c.get('alarm', '?')} from {when(c.get('from'))} to "
            f"{when(c.get('to')) if c.get('to') else 'still active'}"
        )
    return out


def _drop(d: Drop) -> str:
    reason = REASONS.get(d.reason, d.reason)
    if not d.seqs_assigned:
        where = "never stored, so they have no seq"
    else:
        where = "seqs " + ", ".join(
            f"{r.get('first')}–{r.get('last')}" if r.get("first") != r.get("last") else str(r.get("first")) for r in d.ranges
        )
    kinds = ", ".join(f"{k} {v}" for k, v in d.by_kind.items())
    inside = (
        f"; {d.received_inside} of these seqs were received (deletions among them cannot be seen)" if d.received_inside else ""
    )
    return (
        f"{d.count} record(s) at {when(d.ts)}: {reason}; {where}"
        + (f" ({kinds})" if kinds else "")
        + f"{inside} [records_dropped seq {d.seq}]"
    )


def to_json(report: Report) -> dict[str, Any]:
    gws = []
    for gw in report.gateways:
        doc = dataclasses.asdict(gw)
        doc["verdict"] = gw.verdict
        doc["key_note"] = NO_KEY if gw.key_mode == "none" else None
        gws.append(doc)
    return {
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "key_given": report.key_given,
        "key_note": None if report.key_given else NO_KEY,
        "inputs": report.inputs,
        "input_problems": report.input_problems,
        "gateways": gws,
    }
