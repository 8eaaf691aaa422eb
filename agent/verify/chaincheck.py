"""The integrity checks of one gateway's records: hashes (with its bound keys) and duplicates.

Why each check exists:
* the hash (HMAC with the gateway key for that seq) proves a record's content is what the gateway
  wrote; without a key nothing about the content can be proven, so then no hash is checked at
  all (plain SHA-256 proves nothing: anyone can recompute it);
* a record that matches plain unkeyed SHA-256 while a key is given was made without the key: a
  keyed gateway never writes one;
* ``prev``/``chain`` links and seq continuity are checked in ``agent.verify.continuity``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from agent.verify.keys import KeySpec, Schedule
from agent.verify.model import GatewayReport, Problem
from agent.verify.reader import Entry
from buffer import chain


@dataclass
class Version:
    """One distinct content received for a seq, with whether its hash verified."""

    entry: Entry
    canon: bytes
    ok: bool  # its hash matches the key bound to its seq (True when no key: nothing is checked)
    key: KeySpec | None = None
    uncovered: bool = False  # keys were given for the gateway, but none applies to this seq

    @property
    def doc(self) -> dict[str, Any]:
        return self.entry.doc

    @property
    def plain_ok(self) -> bool:
        """Matches unkeyed SHA-256: computed without any key (only asked about failures)."""
        recorded: str = self.doc["chain"]
        return chain.link_bytes(self.doc["prev"], self.canon, None) == recorded


def _versions(entries: list[Entry], keys: Schedule, report: GatewayReport) -> dict[int, list[Version]]:
    """Distinct contents per seq; identical copies are counted as (allowed) duplicates."""
    by_seq: dict[int, list[Version]] = {}
    for e in entries:
        doc = e.doc
        try:
            canon = chain.canonical(doc)
        except TypeError as exc:  # e.g. a non-string key smuggled in; cannot be a gateway record
            report.problems.append(
                Problem("altered", f"record cannot be serialised ({exc})", doc["seq"], str(doc.get("ts")), e.origin)
            )
            continue
        seq = int(doc["seq"])
        known = by_seq.setdefault(seq, [])
        if any(v.canon == canon and v.doc["chain"] == doc["chain"] for v in known):
            report.duplicates += 1
            _check_attachments(e, report)
            continue
        spec = keys.key_for(seq) if keys else None
        if not keys:
            known.append(Version(e, canon, True))
        elif spec is None:
            known.append(Version(e, canon, False, None, uncovered=True))
        else:
            known.append(Version(e, canon, chain.link_bytes(doc["prev"], canon, spec.key) == doc["chain"], spec))
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
            report.problems.append(
                Problem(
                    "attachment",
                    f"attachment {att.get('name')!r} does not match the size/sha256 recorded in the "
                    "chained record: the picture or file was replaced or damaged",
                    int(e.doc["seq"]),
                    str(e.doc.get("ts")),
                    e.origin,
                )
            )


def check_chain(report: GatewayReport, entries: list[Entry], keys: Schedule) -> dict[int, Version]:
    """Check hashes and duplicates; returns the representative record per seq for later checks.

    The representative of a seq is its first version whose hash verified (else its first), so a
    ``records_dropped`` record only explains missing seqs if its own hash verified.
    """
    report.key_mode = "hmac" if keys else "none"
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
    covered = [v for vs in by_seq.values() for v in vs if not v.uncovered]
    key_unusable = bool(keys) and bool(covered) and not any(v.ok for v in covered)
    if key_unusable:
        report.key_unusable = True
        report.problems.append(_key_problem(covered))
    uncovered = sorted(s for s, v in reps.items() if v.uncovered)
    if uncovered:
        report.problems.append(
            Problem(
                "key",
                f"no key given applies to seqs {uncovered[0]}–{uncovered[-1]} ({len(uncovered)} record(s)): the "
                f"first key given for this gateway applies from seq {keys.starts[0]}; their content is not "
                "authenticated. Give the key used before it (GATEWAY=FILE) to check them.",
                uncovered[0],
            )
        )
    for seq, versions in sorted(by_seq.items()):
        rep = reps[seq]
        if len(versions) > 1:
            lines = "; ".join(v.entry.origin for v in versions)
            report.problems.append(
                Problem(
                    "conflict",
                    f"received in {len(versions)} different versions ({lines}); a repeated delivery is "
                    "always identical, so one of them was altered or injected",
                    seq,
                    str(rep.doc["ts"]),
                    rep.entry.origin,
                )
            )
        if key_unusable or rep.ok or rep.uncovered:
            continue
        if rep.plain_ok:
            report.problems.append(
                Problem(
                    "unkeyed",
                    "unkeyed record (a keyed gateway never writes these): its hash is plain SHA-256, which "
                    "anyone can compute, so it was made or altered by someone without the gateway key",
                    seq,
                    str(rep.doc["ts"]),
                    rep.entry.origin,
                )
            )
        else:
            report.problems.append(
                Problem(
                    "altered",
                    "its content does not match its chain hash under the key for this seq "
                    f"({rep.key.name if rep.key else '?'}): the record was altered after the gateway wrote it, or "
                    "made with another key (another gateway's, or a key no longer valid at this seq)",
                    seq,
                    str(rep.doc["ts"]),
                    rep.entry.origin,
                )
            )
    report.keys = _key_use(reps, keys)
    return reps


def _key_use(reps: dict[int, Version], keys: Schedule) -> list[dict[str, Any]]:
    """Which key verified which records: an inspector sees each rotation and what each key vouches for."""
    out = []
    for spec in keys.specs:
        seqs = [s for s, v in reps.items() if v.ok and v.key is spec]
        out.append(
            {
                "file": spec.name,
                "bound_to": spec.gateway,
                "from_seq": spec.from_seq,
                "to_seq": keys.until(spec),
                "verified": len(seqs),
                "first_verified": min(seqs) if seqs else None,
                "last_verified": max(seqs) if seqs else None,
            }
        )
    return out


def _key_problem(versions: list[Version]) -> Problem:
    n = len(versions)
    text = (
        f"none of the {n} records matches the chain key given: wrong key? (If the key is right, every "
        "record was altered or forged.)"
    )
    if all(v.plain_ok for v in versions):
        text += (
            " They match unkeyed SHA-256: every one is an unkeyed record (a keyed gateway never writes "
            "these): the gateway ran without a chain key, or the records were made by someone without the key."
        )
    return Problem("key", text + " The links between records and the sequence were still checked.")
