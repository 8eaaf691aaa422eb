"""RulesEngine: runs the site rules inside the buffer's commit transaction (docs/rules.md).

The store calls it on the buffer thread after a batch's rows are inserted and before the
SQLite commit (``buffer.processor.CommitProcessor``). Each rule sees the batch plus what the
rules before it emitted in this transaction; its outputs are inserted at once (seqs after
the inputs) and its changed ``snapshot()`` is written to ``rule_state`` in the same
transaction. So a rule's state and the records it has counted are committed together or not
at all: a kill or a power cut can neither lose nor double a count, whatever the durability.
A rule that raises on a batch is restored to its last committed state and given the batch again
one record at a time: only the records it raises on are skipped (logged with its name and
recorded as a ``rule_failed`` event), so one hostile record cannot hide the others from it. The
other rules and the writer run on.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from buffer.processor import Insert
from buffer.record import Committed, Kind, Record
from rules.base import Rule

log = logging.getLogger("headframe.rules")

SCHEMA = "CREATE TABLE IF NOT EXISTS rule_state (name TEXT PRIMARY KEY, snapshot BLOB NOT NULL, seq INTEGER)"

#: A failing rule is logged (and recorded) at most this often, with the count since.
REPORT_EVERY_S = 60.0


def encode(snapshot: dict[str, Any]) -> bytes:
    """Canonical bytes of a snapshot: equal state, equal bytes (that is how "changed" is told)."""
    if not isinstance(snapshot, dict):
        raise TypeError(f"snapshot() returned {type(snapshot).__name__}, not a dict")
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)


@dataclass
class _Failures:
    count: int = 0
    skipped: int = 0
    last_report: float = -1e9
    reported: int = 0


class RulesEngine:
    """The ordered rules of this gateway, as one ``CommitProcessor`` for ``BufferStore``."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        seen: set[str] = set()
        for rule in rules:
            name = getattr(rule, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError(f"rule {rule!r} has no name (set a stable, unique 'name' string)")
            if name in seen:
                raise ValueError(f"two rules are named {name!r}: a rule's name keys its saved state and must be unique")
            seen.add(name)
        self.rules: list[Rule] = list(rules)
        self._active: list[Rule] = []
        self._db: sqlite3.Connection | None = None
        self._insert: Insert | None = None
        self._saved: dict[str, bytes] = {}  # last committed snapshot per rule
        self._pending: dict[str, bytes] = {}  # snapshots changed in the open transaction
        self._notes: list[Record] = []  # engine events not yet committed
        self._notes_in_tx = 0
        self._seq = 0  # highest seq this engine has seen committed
        self._seq_tx = 0
        self.failures: dict[str, _Failures] = {}
        self.disabled: dict[str, str] = {}

    # ------------------------------------------------------------------ open
    def open(self, db: sqlite3.Connection, insert: Insert) -> None:
        """Create ``rule_state`` and restore every rule from it; a rule whose stored state it
        cannot take starts afresh (logged, and recorded as ``rule_state_reset``)."""
        self._db, self._insert = db, insert
        db.execute(SCHEMA)
        db.commit()
        stored = {str(n): (bytes(b), s) for n, b, s in db.execute("SELECT name, snapshot, seq FROM rule_state")}
        self._seq = max((int(s) for _b, s in stored.values() if s is not None), default=0)
        for rule in self.rules:
            try:
                fresh = encode(rule.snapshot())
            except Exception as exc:
                self._disable(rule, f"snapshot() of a new rule failed: {type(exc).__name__}: {exc}")
                continue
            self._active.append(rule)
            self._saved[rule.name] = fresh
            if rule.name not in stored:
                continue
            try:
                rule.restore(orjson.loads(stored[rule.name][0]))
                self._saved[rule.name] = encode(rule.snapshot())
            except Exception as exc:
                log.error(
                    "rules: the saved state of rule %s cannot be restored (%s: %s); it starts afresh",
                    rule.name,
                    type(exc).__name__,
                    exc,
                )
                self._notes.append(_note({"event": "rule_state_reset", "rule": rule.name, "reason": _short(exc)}))
                if not self._restore(rule):
                    continue
        log.info("rules: %d rule(s) running: %s", len(self._active), ", ".join(r.name for r in self._active))

    # --------------------------------------------------------------- commits
    def process(self, batch: Sequence[Committed], now: float) -> list[Record]:
        """Apply every rule to a committed batch, inside its transaction; returns the outputs."""
        return self._run(list(batch), now, tick=False)

    def tick(self, now: float) -> list[Record]:
        """Time-based step of every rule, in a transaction with no inputs; returns the outputs."""
        return self._run([], now, tick=True)

    def _run(self, visible: list[Committed], now: float, *, tick: bool) -> list[Record]:
        assert self._insert is not None and self._db is not None, "open() first"
        out: list[Record] = []
        top = visible[-1].seq if visible else 0
        for rule in list(self._active):
            try:
                outs = list(rule.apply(tuple(visible), now)) if visible else []
                if tick:
                    outs.extend(rule.tick(now))
                _check_outputs(outs)
                blob = encode(rule.snapshot())
                committed = self._insert(outs) if outs else []
            except (sqlite3.Error, OSError):
                raise  # the store's trouble, not the rule's: the whole transaction rolls back
            except Exception as exc:
                if not visible:
                    self._failed(rule, "tick" if tick else "apply", exc, 0)
                    continue
                # one hostile record must not hide the others: retry this rule record by record
                retried = self._one_by_one(rule, visible, now, tick=tick, first=exc)
                if retried is None:
                    continue
                outs, blob, committed = retried
            if blob != self._saved[rule.name]:
                self._pending[rule.name] = blob
            else:
                self._pending.pop(rule.name, None)
            if committed:
                visible = visible + committed  # later rules see them; this rule never does
                out.extend(outs)
                top = committed[-1].seq
        if self._notes:
            noted = self._insert(list(self._notes))
            self._notes_in_tx = len(noted)
            top = noted[-1].seq
        self._seq_tx = max(self._seq, top)
        if self._pending:
            self._db.executemany(
                "INSERT OR REPLACE INTO rule_state (name, snapshot, seq) VALUES (?, ?, ?)",
                [(n, b, self._seq_tx) for n, b in self._pending.items()],
            )
        return out

    def after_commit(self) -> None:
        self._saved.update(self._pending)
        self._pending.clear()
        del self._notes[: self._notes_in_tx]
        self._notes_in_tx = 0
        self._seq = max(self._seq, self._seq_tx)

    def after_rollback(self) -> None:
        """The transaction is gone: rules that changed go back to their committed state (the
        writer retries the batch, so applying it again must not count it twice)."""
        for name in list(self._pending):
            rule = next((r for r in self._active if r.name == name), None)
            if rule is not None:
                self._restore(rule)
        self._pending.clear()
        self._notes_in_tx = 0

    # -------------------------------------------------------------- failures
    def _one_by_one(
        self, rule: Rule, visible: list[Committed], now: float, *, tick: bool, first: Exception
    ) -> tuple[list[Record], bytes, list[Committed]] | None:
        """After ``rule`` failed on a whole batch: from its committed state, apply each record
        alone and skip only those it raises on (each skip is a failure, logged and counted).
        Only runs on failure, so the normal path stays one call per batch. None when the rule
        could not even be restored, or failed outside a single record (e.g. in ``tick``)."""
        if not self._restore(rule):
            return None
        outs: list[Record] = []
        poisoned: list[Committed] = []
        last: Exception = first
        for item in visible:
            before = encode(rule.snapshot())
            try:
                got = list(rule.apply((item,), now))
                _check_outputs(got)
                outs += got
            except (sqlite3.Error, OSError):
                raise
            except Exception as exc:
                poisoned, last = [*poisoned, item], exc
                try:
                    rule.restore(orjson.loads(before))
                except Exception as bad:
                    self._disable(rule, f"restore() of its own snapshot failed: {type(bad).__name__}: {bad}")
                    return None
        # Record by record found the poison; a rule may decide on the batch as a whole (a seal alarm
        # and its suppression in one commit), so apply the batch without the poison in one call —
        # and keep the record-by-record result only if that fails too.
        if poisoned and len(poisoned) < len(visible):
            alone, alone_state = outs, encode(rule.snapshot())
            if not self._restore(rule):
                return None
            clean = tuple(i for i in visible if i not in poisoned)
            try:
                outs = list(rule.apply(clean, now))
                _check_outputs(outs)
            except (sqlite3.Error, OSError):
                raise
            except Exception:
                outs = alone
                try:
                    rule.restore(orjson.loads(alone_state))
                except Exception as bad:
                    self._disable(rule, f"restore() of its own snapshot failed: {type(bad).__name__}: {bad}")
                    return None
        try:
            if tick:
                got = list(rule.tick(now))
                _check_outputs(got)
                outs += got
            blob = encode(rule.snapshot())
            assert self._insert is not None
            committed = self._insert(outs) if outs else []
        except (sqlite3.Error, OSError):
            raise
        except Exception as exc:
            self._failed(rule, "tick" if tick else "apply", exc, len(visible))
            return None
        self._failed(rule, "apply", last, len(poisoned), restore=False)
        return outs, blob, committed

    def _restore(self, rule: Rule) -> bool:
        """Put ``rule`` back to its last committed snapshot; a rule that cannot be is disabled."""
        try:
            rule.restore(orjson.loads(self._saved[rule.name]))
            return True
        except Exception as exc:
            self._disable(rule, f"restore() of its own snapshot failed: {type(exc).__name__}: {exc}")
            return False

    def _disable(self, rule: Rule, why: str) -> None:
        log.error("rules: rule %s is disabled until the agent restarts: %s", rule.name, why)
        self.disabled[rule.name] = why
        if rule in self._active:
            self._active.remove(rule)
        self._notes.append(_note({"event": "rule_disabled", "rule": rule.name, "reason": why[:300]}))

    def _failed(self, rule: Rule, phase: str, exc: Exception, n: int, *, restore: bool = True) -> None:
        """Skip the rule's input: back to its committed state, nothing of its output kept
        (``restore=False``: only ``n`` poisoned records were skipped, the rest was applied)."""
        f = self.failures.setdefault(rule.name, _Failures())
        f.count += 1
        f.skipped += n
        if restore:
            self._pending.pop(rule.name, None)
            self._restore(rule)
        now = time.monotonic()
        if now - f.last_report < REPORT_EVERY_S:
            return
        first = f.reported == 0
        log.error(
            "rules: rule %s failed in %s (%s); %d failure(s), %d input record(s) skipped so far; the other rules run on",
            rule.name,
            phase,
            _short(exc),
            f.count,
            f.skipped,
            exc_info=first,
        )
        self._notes.append(
            _note(
                {
                    "event": "rule_failed",
                    "rule": rule.name,
                    "phase": phase,
                    "error": _short(exc),
                    "failures": f.count,
                    "skipped_records": f.skipped,
                }
            )
        )
        f.last_report, f.reported = now, f.reported + 1

    def health(self) -> dict[str, Any]:
        """For the health record: which rules run, which failed or were disabled."""
        # read from the event loop while the buffer thread runs: copy before iterating
        return {
            "rules": [r.name for r in list(self._active)],
            "disabled": dict(self.disabled),
            "failures": {n: {"count": f.count, "skipped_records": f.skipped} for n, f in list(self.failures.items())},
        }


def _check_outputs(outs: list[Any]) -> None:
    """Reject what the store could not take, before anything is written (the rule's fault)."""
    for rec in outs:
        if not isinstance(rec, Record):
            raise TypeError(f"output {rec!r} is not a buffer.record.Record")
        orjson.dumps(rec.payload, option=orjson.OPT_SORT_KEYS)  # JSONEncodeError is a TypeError


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _note(payload: dict[str, Any]) -> Record:
    return Record("agent", Kind.EVENT, payload)
