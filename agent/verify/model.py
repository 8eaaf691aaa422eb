"""The findings of a verification, per gateway: plain data, rendered as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERIFIED = "VERIFIED"
PROBLEMS = "PROBLEMS FOUND"
NO_RECORDS = "NO RECORDS"   # only status messages from this gateway: nothing to verify, nothing wrong


@dataclass
class Problem:
    """One thing that is wrong with the stream, in words an inspector can act on."""

    code: str           # missing | altered | conflict | link | bridge | key | attachment | chain_restart
    text: str
    seq: int | None = None
    ts: str | None = None
    where: str | None = None   # file and line of the evidence


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
    trusted: bool               # its own chain hash verified, so its ranges may explain missing seqs


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
    key_mode: str = "none"        # hmac | sha256 (no key given)
    first_seq: int | None = None
    last_seq: int | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    records: int = 0              # distinct seqs received
    duplicates: int = 0           # identical extra copies (allowed: delivery is at least once)
    problems: list[Problem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    silences: list[dict[str, Any]] = field(default_factory=list)   # long quiet spells no gap record explains
    status: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.problems:
            return PROBLEMS
        return VERIFIED if self.records else NO_RECORDS


@dataclass
class Report:
    inputs: list[dict[str, Any]]
    key_given: bool
    keys: int
    gateways: list[GatewayReport]
    input_problems: list[dict[str, str]]

    @property
    def verdict(self) -> str:
        verdicts = [g.verdict for g in self.gateways]
        ok = VERIFIED in verdicts and PROBLEMS not in verdicts and not self.input_problems
        return VERIFIED if ok else PROBLEMS

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == VERIFIED else 1
