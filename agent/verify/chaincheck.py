"""The integrity checks of one gateway's records: hashes, duplicates, links, sequence continuity.

Why each check exists:
* the hash (HMAC with the gateway key) proves a record's content is what the gateway wrote;
* ``prev`` = the predecessor's ``chain`` proves nothing was removed or reordered between two
  records; across a dropped range the gateway's ``records_dropped`` record gives the range's
  own ``prev``/``chain``, so the chain still closes over it;
* every seq from first to last must be present or inside an explained (and verified) drop.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from agent.verify.model import Drop, GatewayReport, Note, Problem
from agent.verify.reader import Entry
from agent.verify.timefmt import when as when_text
from agent.verify.window import Window
from buffer import chain


@dataclass
class Version:
    """One distinct content received for a seq, with whether its hash verified."""

    entry: Entry
    canon: bytes
    ok: bool          # matches with a given key (or plain SHA-256 when no key was given)

    @property
    def doc(self) -> dict[str, Any]:
        return self.entry.doc

    @property
    def plain_ok(self) -> bool:
        """Matches unkeyed SHA-256: computed without any key (only asked about failures)."""
        recorded: str = self.doc["chain"]
        return chain.link_bytes(self.doc["prev"], self.canon, None) == recorded


def _versions(entries: list[Entry], keys: list[bytes], report: GatewayReport) -> dict[int, list[Version]]:
    """Distinct contents per seq; identical copies are counted as (allowed) duplicates."""
    by_seq: dict[int, list[Version]] = {}
    for e in entries:
        doc = e.doc
        try:
            canon = chain.canonical(doc)
        except TypeError as exc:  # e.g. a non-string key smuggled in; cannot be a gateway record
            report.problems.append(Problem("altered", f"record cannot be serialised ({exc})", doc["seq"],
                                           str(doc.get("ts")), e.origin))
            continue
        seq = int(doc["seq"])
        known = by_seq.setdefault(seq, [])
        if any(v.canon == canon and v.doc["chain"] == doc["chain"] for v in known):
            report.duplicates += 1
            _check_attachments(e, report)
            continue
        ok = any(chain.link_bytes(doc["prev"], canon, k or None) == doc["chain"] for k in keys or [b""])
        known.append(Version(e, canon, ok))
        _check_attachments(e, report)
    return by_seq


def _check_attachments(e: Entry, report: GatewayReport) -> None:
    """Attachment bytes are not hashed into the chain, their sha256 is: check the bytes against it."""
    for att in e.doc.get("attachments") or []:
        if not isinstance(att, dict) or "data" not in att:
            continue
        try:
            data = base64.b64decode(att["data"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != att.get("sha256") or len(data) != att.get("size"):
            report.problems.append(Problem(
                "attachment", f"attachment {att.get('name')!r} does not match the size/sha256 recorded in the "
                "chained record: the picture or file was replaced or damaged", int(e.doc["seq"]),
                str(e.doc.get("ts")), e.origin))


def check_chain(report: GatewayReport, entries: list[Entry], keys: list[bytes]) -> dict[int, Version]:
    """Check hashes and duplicates; returns the representative record per seq for later checks.

    The representative of a seq is its first version whose hash verified (else its first), so a
    ``records_dropped`` record only explains missing seqs if its own hash verified.
    """
    report.key_mode = "hmac" if keys else "sha256"
    by_seq = _versions(entries, keys, report)
    reps: dict[int, Version] = {}
    for seq in sorted(by_seq):
        versions = by_seq[seq]
        reps[seq] = next((v for v in versions if v.ok), versions[0])
    if not reps:
        return reps
    report.records = len(reps)
    report.first_seq, report.last_seq = min(reps), max(reps)
    stamps = sorted(str(v.doc["ts"]) for v in reps.values())
    report.first_ts, report.last_ts = stamps[0], stamps[-1]
    key_unusable = not any(v.ok for vs in by_seq.values() for v in vs)
    if key_unusable:
        report.problems.append(_key_problem(by_seq, keys))
    for seq, versions in sorted(by_seq.items()):
        rep = reps[seq]
        if len(versions) > 1:
            lines = "; ".join(v.entry.origin for v in versions)
            report.problems.append(Problem(
                "conflict", f"received in {len(versions)} different versions ({lines}); a repeated delivery is "
                "always identical, so one of them was altered or injected", seq, str(rep.doc["ts"]),
                rep.entry.origin))
        if not key_unusable and not rep.ok:
            hint = (" It matches unkeyed SHA-256: it was made by someone without the gateway key."
                    if keys and rep.plain_ok else "")
            report.problems.append(Problem(
                "altered", "its content does not match its chain hash: the record was altered after the gateway "
                f"wrote it, or injected by someone without the key.{hint}", seq, str(rep.doc["ts"]),
                rep.entry.origin))
    return reps


def _key_problem(by_seq: dict[int, list[Version]], keys: list[bytes]) -> Problem:
    n = sum(len(vs) for vs in by_seq.values())
    all_plain = all(v.plain_ok for vs in by_seq.values() for v in vs)
    if not keys:
        return Problem("key", f"none of the {n} records matches an unkeyed SHA-256 chain: the stream is keyed "
                       "(HMAC); give the gateway's chain key with --key-file to check the content of the records. "
                       "Only the links between records and the sequence were checked.")
    text = (f"none of the {n} records matches the chain key given: wrong key? (If the key is right, every "
            "record was altered or forged.)")
    if all_plain:
        text += (" They match unkeyed SHA-256: the gateway ran without a chain key, or the records were made "
                 "by someone without the key.")
    return Problem("key", text + " The links between records and the sequence were still checked.")


def check_continuity(report: GatewayReport, reps: dict[int, Version], drops: list[Drop]) -> None:
    """Walk every seq from first to last: a record, an explained drop, or a problem."""
    if not reps:
        return
    ranges = sorted(((int(r["first"]), int(r["last"]), r) for d in drops if d.trusted and d.seqs_assigned
                     for r in d.ranges if _range_ok(r)), key=lambda x: x[0])
    first, last = min(reps), max(reps)
    key_unusable = any(p.code == "key" for p in report.problems)
    present = sorted(reps)
    starts = [r[0] for r in ranges]
    reach = list(itertools.accumulate((r[1] for r in ranges), max))  # furthest seq covered so far
    window = Window({seq: v.entry.received for seq, v in reps.items()})
    prev_chain: str | None = None
    prev_seq: int | None = None
    prev_ok = True
    s = first
    while s <= last:
        rep = reps.get(s)
        if rep is not None:
            doc = rep.doc
            linked_ok = (rep.ok and prev_ok) or key_unusable
            if prev_chain is not None and doc["prev"] != prev_chain and linked_ok:
                what = (f"seq {prev_seq}" if prev_seq == s - 1 else f"the dropped range ending at seq {s - 1}")
                report.problems.append(Problem(
                    "link", f"does not follow {what}: its prev is not that record's chain hash (a record was "
                    "replaced, or records were reordered)", s, str(doc["ts"]), rep.entry.origin))
            prev_chain, prev_seq, prev_ok = str(doc["chain"]), s, rep.ok or key_unusable
            s += 1
            continue
        covering = _covering(ranges, starts, reach, s)
        if covering is not None:
            lo, hi, rng = covering
            if lo == s and prev_chain is not None and rng.get("prev") != prev_chain:
                report.problems.append(Problem(
                    "bridge", f"the dropped range {lo}–{hi} does not join the record before it (seq {prev_seq}): "
                    "the range's prev is not that record's chain hash", s,
                    str(reps[prev_seq].doc["ts"]) if prev_seq in reps else None))
            prev_chain, prev_seq, prev_ok = str(rng.get("chain")), hi, True
            s = hi + 1
            continue
        after_present = present[bisect.bisect_right(present, s)]  # exists: s < last, and last is present
        i = bisect.bisect_right(starts, s)
        nxt = min(after_present, starts[i]) if i < len(starts) else after_present
        after = reps.get(nxt)
        before = reps.get(prev_seq) if prev_seq is not None else None
        n = nxt - s
        span = f"seq {s}" if n == 1 else f"seqs {s}–{nxt - 1}"
        when = (f", between seq {prev_seq} at {when_text(before.doc['ts'] if before else None)} and seq {nxt} at "
                f"{when_text(after.doc['ts'] if after else None)}")
        edge = window.edge(s, nxt - 1)
        if edge is not None:
            report.notes.append(Note(s, str(before.doc["ts"]) if before else "", (
                f"{span} not in the capture{when}: at the {edge} of the capture window, so probably sent "
                f"{'before the capture started' if edge == 'start' else 'after it ended'} (records of different "
                "kinds leave in priority order); not counted as a problem")))
        elif after is not None and after.doc["prev"] == chain.GENESIS:
            report.problems.append(Problem(
                "chain_restart", f"{span} never arrived and the chain starts anew at seq {nxt}{when}. The gateway's "
                "buffer database was lost or replaced; records not yet sent then are gone and no record explains "
                "them", s, str(before.doc["ts"]) if before else None))
        else:
            report.problems.append(Problem(
                "missing", f"missing: {span} ({n} record{'s' if n != 1 else ''}){when}. No records_dropped record "
                "explains them: deleted, or not captured", s, str(before.doc["ts"]) if before else None))
        prev_chain, prev_seq, prev_ok = None, nxt - 1, True
        s = nxt


def _covering(ranges: list[tuple[int, int, Any]], starts: list[int], reach: list[int],
              s: int) -> tuple[int, int, Any] | None:
    """The dropped range holding seq ``s`` (ranges sorted by first seq), or None; O(log n) when none does."""
    i = bisect.bisect_right(starts, s) - 1
    if i < 0 or reach[i] < s:
        return None
    while i >= 0:
        if ranges[i][0] <= s <= ranges[i][1]:
            return ranges[i]
        i -= 1
    return None


def _range_ok(r: Any) -> bool:
    return (isinstance(r, dict) and isinstance(r.get("first"), int) and isinstance(r.get("last"), int)
            and 0 < r["first"] <= r["last"])
