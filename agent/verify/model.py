"""The findings of a verification, per gateway: plain data, rendered as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERIFIED = "VERIFIED"
PROBLEMS = "PROBLEMS FOUND"
EXCEPT_EDGES = "VERIFIED EXCEPT EDGES"  # seqs at the edges of a live capture are not proven
LINKS_ONLY = "LINKS ONLY — NOT AUTHENTICATED"  # no key: links and seqs checked, content not
NO_RECORDS = "NO RECORDS"  # only status messages from this gateway: nothing to verify, nothing wrong


@dataclass
class Problem:
    """One thing that is wrong with the stream, in words an inspector can act on."""

    code: str  # missing | altered | unkeyed | conflict | link | bridge | key | attachment | chain_restart
    # | malformed
    text: str
    seq: int | None = None
    ts: str | None = None
    where: str | None = None  # file and line of the evidence


@dataclass
class Drop:
    """A ``records_dropped`` record: the gateway itself says these records were removed, and why."""

    seq: int
    ts: str
    reason: str
    count: int
    by_kind: dict[str, int]
    ranges: list[dict[str, Any]]
    seqs_assigned: bool
    trusted: bool  # its own chain hash verified, so its ranges may explain missing seqs
    received_inside: int | None = None  # power_loss only: seqs of its ranges that were received anyway


@dataclass
class Gap:
    """A ``gap`` record: a discontinuity the gateway explained (cause, duration, what the site did)."""

    seq: int
    ts: str
    cause: str
    from_seq: int | None
    from_ts: str | None
    to_seq: int | None
    to_ts: str | None
    duration_s: float | None
    energy: list[dict[str, Any]]
    camera_faults: list[dict[str, Any]]


@dataclass
class Note:
    """An evidence record worth seeing beside the gaps (start, mains, config, dark-site alarm)."""

    seq: int
    ts: str
    text: str


@dataclass
class GatewayReport:
    site: str
    gateway: str
    key_mode: str = "none"  # hmac | none (no key given: content not authenticated)
    key_unusable: bool = False  # keys given, but no record matches them
    first_seq: int | None = None
    last_seq: int | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    records: int = 0  # distinct seqs received
    duplicates: int = 0  # identical extra copies (allowed: delivery is at least once)
    problems: list[Problem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    silences: list[dict[str, Any]] = field(default_factory=list)  # long quiet spells no gap record explains
    status: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)  # which key verified which seqs
    edges: list[dict[str, Any]] = field(default_factory=list)  # seqs not proven (live capture edges)

    @property
    def verdict(self) -> str:
        if self.problems:
            return PROBLEMS
        if not self.records:
            return NO_RECORDS
        if self.key_mode == "none":
            return LINKS_ONLY
        return EXCEPT_EDGES if self.edges else VERIFIED

    def accepted(self, *, allow_edges: bool, no_key_ok: bool) -> bool:
        """Exit 0 for this gateway: nothing wrong, and every caveat was accepted by the user."""
        return not self.problems and (
            not self.records or ((self.key_mode != "none" or no_key_ok) and (not self.edges or allow_edges))
        )


@dataclass
class Report:
    inputs: list[dict[str, Any]]
    key_given: bool
    keys: int
    gateways: list[GatewayReport]
    input_problems: list[dict[str, str]]
    allow_edges: bool = False
    no_key_ok: bool = False

    @property
    def verdict(self) -> str:
        verdicts = {g.verdict for g in self.gateways}
        if PROBLEMS in verdicts or self.input_problems or not verdicts - {NO_RECORDS}:
            return PROBLEMS
        for caveat in (LINKS_ONLY, EXCEPT_EDGES):
            if caveat in verdicts:
                return caveat
        return VERIFIED

    @property
    def exit_code(self) -> int:
        ok = self.verdict != PROBLEMS and all(
            g.accepted(allow_edges=self.allow_edges, no_key_ok=self.no_key_ok) for g in self.gateways
        )
        return 0 if ok else 1
