"""The scenario checks ``chain_intact`` and ``all_delivered``, judged by the real verifier.

The rig runs ``agent.verify`` (what an inspector runs: ``headframe verify``) over what the
recorder received plus the records still in the agent's buffer, with the default chain key
beside the buffer. So a seq the agent itself explained (a chained ``records_dropped``, e.g.
reason ``power_loss`` for the seqs skipped after a reboot) counts as explained, not missing;
only what the verifier cannot account for fails the scenario.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agent.verify import verify_inputs
from agent.verify.model import GatewayReport, Problem
from agent.verify.reader import RECORD_FIELDS, Entry, InputSet
from buffer.chainkey import default_key_path

#: verifier problem codes that mean "a record is not there" (everything else is integrity)
MISSING_CODES = ("missing", "chain_restart")


def chain_key(db: Path) -> bytes | None:
    """The agent's default chain key beside its buffer (None if the agent never started)."""
    path = default_key_path(db)
    return path.read_bytes().strip() if path.exists() else None


def buffer_state(db: Path) -> tuple[int, set[int]]:
    """(last committed seq, seqs still buffered), read-only; (0, empty) if there is no buffer yet."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT last_seq FROM state").fetchone()
            pending = {r[0] for r in conn.execute("SELECT seq FROM records")}
        finally:
            conn.close()
        return (int(row[0]) if row else 0), pending
    except sqlite3.Error:
        return 0, set()


def _buffered_docs(db: Path, skip: set[int]) -> list[dict[str, Any]]:
    """The stored documents of records not yet sent (as ``headframe buffer export`` writes them)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT seq, body FROM records ORDER BY seq").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [orjson.loads(body) for seq, body in rows if seq not in skip]


@dataclass
class Delivery:
    """The verifier's findings, split into what the two scenario checks ask."""

    last: int  # last seq the agent committed
    buffered: int  # records still in its buffer
    received: int  # distinct seqs received
    integrity: list[str]  # chain_intact fails on any of these
    missing: list[str]  # all_delivered fails on any of these
    explained: int  # seqs covered by the agent's own records_dropped

    def chain_result(self) -> dict[str, Any]:
        return {"ok": not self.integrity, "detail": "; ".join(self.integrity[:3]) or "ok (agent.verify)"}

    def delivered_result(self) -> dict[str, Any]:
        ok = not self.missing and self.last > 0
        detail = (
            f"{self.last} committed, {self.received} received, {self.buffered} still buffered, "
            f"{self.explained} explained by records_dropped"
        )
        if self.missing:
            detail += "; " + "; ".join(self.missing[:3])
        return {"ok": ok, "detail": detail}


def _covered(rep: GatewayReport, seq: int) -> bool:
    return any(
        d.trusted
        and d.seqs_assigned
        and any(r.get("first", 0) <= seq <= r.get("last", -1) for r in d.ranges if isinstance(r, dict))
        for d in rep.drops
    )


def check(messages: list[dict[str, Any]], db: Path) -> Delivery:
    """Verify received + buffered records of the scenario's one gateway."""
    last, pending = buffer_state(db)
    inputs = InputSet()
    received: set[int] = set()
    integrity: list[str] = []
    for i, doc in enumerate(messages, start=1):
        if any(f not in doc for f in RECORD_FIELDS) or not isinstance(doc.get("seq"), int):
            integrity.append(f"message {i} is not a Headframe record")
            continue
        received.add(doc["seq"])
        inputs.entries.append(Entry(f"received message {i}", doc))
    for doc in _buffered_docs(db, received):
        inputs.entries.append(Entry(f"buffer seq {doc.get('seq')}", doc))
    key = chain_key(db)
    report = verify_inputs(inputs, [key] if key else [])
    missing: list[str] = []
    explained = 0
    if len(report.gateways) > 1:
        integrity.append(f"records of {len(report.gateways)} gateways in one scenario")
    for rep in report.gateways:
        problems: list[Problem] = rep.problems
        missing += [p.text for p in problems if p.code in MISSING_CODES]
        integrity += [f"seq {p.seq}: {p.text}" for p in problems if p.code not in MISSING_CODES]
        explained += sum(
            r["last"] - r["first"] + 1
            for d in rep.drops
            if d.trusted and d.seqs_assigned
            for r in d.ranges
            if isinstance(r, dict) and "first" in r and "last" in r
        )
        # the verifier walks first..last of what it got: the edges are checked against the buffer here
        head = [s for s in range(1, rep.first_seq or 1) if not _covered(rep, s)]
        if head:
            missing.append(f"seqs {head[0]}–{head[-1]} before the first received record never arrived")
        if rep.last_seq is not None and last > rep.last_seq:
            missing.append(f"seqs {rep.last_seq + 1}–{last} were committed but neither arrived nor are buffered")
    if not report.gateways and last:
        missing.append(f"{last} records committed, none received or buffered")
    return Delivery(last, len(pending), len(received), integrity, missing, explained)
