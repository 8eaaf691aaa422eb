"""Record expectations of a scenario: what must (or must not) be seen, how often, and when.

An expectation is a mapping. ``kind``, ``source`` and ``synced`` compare with the record's
envelope; ``payload: {...}`` and every other key compare with its payload, where a dotted key
reaches into nested objects (``previous_run.ended``) and ``*`` stands for any one key
(``values.*.q``: any point's quality). A value is compared for equality, or by an operator
mapping ``{eq|ne|gt|ge|lt|le: x, in: [..], not_in: [..], has: x}``
(``has``: a text or list that contains x) (all given must hold); a string
``"$name"`` is a fact of the run (``ScenarioRun.facts()``, e.g. ``$dlt_corrupted``: answers the
meter simulator corrupted), so a count can be checked against what was injected.

Qualifiers: ``after_step``/``before_step: N`` keep records whose ``ts`` is at/after the start
of step N, or before it (the fault and its repair are steps, so "only after the fault" can be
said); ``count`` (exactly), ``min`` (default 1) and ``max`` bound how many distinct records
(by seq) match. Payload keys that collide with these names go under ``payload:``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

ENVELOPE = ("kind", "source", "synced")
QUALIFIERS = ("after_step", "before_step", "count", "min", "max")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "has": lambda a, b: b in a,
}
_MISSING = object()


def lookup(payload: Any, dotted: str) -> list[Any]:
    """Every value at ``a.b.c`` (several when a part is ``*``); a key that is there with a dot
    in its name wins. An absent path gives no values (absent never equals anything)."""
    if isinstance(payload, dict) and dotted in payload:
        return [payload[dotted]]
    nodes = [payload]
    for part in dotted.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if part == "*":
                nxt.extend(node.values())
            elif part in node:
                nxt.append(node[part])
        nodes = nxt
    return nodes


def is_operator(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k in _OPS for k in value)


def _resolve(value: Any, facts: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in facts:
            raise KeyError(f"unknown run fact {value!r} (known: {', '.join(sorted(facts)) or 'none'})")
        return facts[value[1:]]
    if isinstance(value, list):
        return [_resolve(v, facts) for v in value]
    return value


def _holds(actual: Any, want: Any, facts: Mapping[str, Any]) -> bool:
    if not is_operator(want):
        return bool(actual == _resolve(want, facts))
    try:
        return all(_OPS[op](actual, _resolve(arg, facts)) for op, arg in want.items())
    except TypeError:  # e.g. None > 3: not a match
        return False


def split(want: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(envelope, payload conditions, qualifiers) of one expectation."""
    env = {k: v for k, v in want.items() if k in ENVELOPE}
    quals = {k: v for k, v in want.items() if k in QUALIFIERS}
    cond = {k: v for k, v in want.items() if k not in ENVELOPE and k not in QUALIFIERS and k != "payload"}
    cond.update(want.get("payload") or {})
    return env, cond, quals


def matches(msg: dict[str, Any], want: Mapping[str, Any], facts: Mapping[str, Any] | None = None) -> bool:
    """Does one record meet the expectation's envelope and payload conditions (not its qualifiers)?"""
    env, cond, _ = split(want)
    facts = facts or {}
    for key, value in env.items():
        if not _holds(msg.get(key, _MISSING), value, facts):
            return False
    payload = msg.get("payload", {})
    return all(any(_holds(v, value, facts) for v in lookup(payload, key)) for key, value in cond.items())


def record_time(msg: dict[str, Any]) -> float | None:
    """The record's ``ts`` (ISO, ms, Z) as epoch seconds."""
    try:
        return datetime.fromisoformat(str(msg["ts"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return None


def select(
    msgs: Sequence[dict[str, Any]], want: Mapping[str, Any], step_times: Mapping[int, float], facts: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The distinct records (first copy of each seq) that meet the expectation inside its window."""
    _, _, q = split(want)
    lo = step_times.get(q["after_step"]) if "after_step" in q else None
    hi = step_times.get(q["before_step"]) if "before_step" in q else None
    if ("after_step" in q and lo is None) or ("before_step" in q and hi is None):
        return []  # the step never ran (the scenario failed before it): nothing can be in its window
    seen: set[Any] = set()
    out = []
    for m in msgs:
        key = m.get("seq", id(m))
        if key in seen:
            continue
        seen.add(key)
        if not matches(m, want, facts):
            continue
        ts = record_time(m)
        if lo is not None and (ts is None or ts < lo - 0.001):  # ts has ms resolution
            continue
        if hi is not None and (ts is None or ts >= hi):
            continue
        out.append(m)
    return out


def bounds(want: Mapping[str, Any], absent: bool = False) -> tuple[int, int | None]:
    """(min, max) number of matching records the expectation allows."""
    _, _, q = split(want)
    if absent:
        return 0, 0
    if "count" in q:
        return int(q["count"]), int(q["count"])
    return int(q.get("min", 1)), (int(q["max"]) if "max" in q else None)


def judge(
    msgs: Sequence[dict[str, Any]],
    want: Mapping[str, Any],
    step_times: Mapping[int, float],
    facts: Mapping[str, Any],
    absent: bool = False,
) -> dict[str, Any]:
    """One check result: ok, and a detail that says how many matched and what was allowed."""
    try:
        found = select(msgs, want, step_times, facts)
    except KeyError as exc:
        return {"ok": False, "detail": str(exc)}
    lo, hi = bounds(want, absent)
    ok = len(found) >= lo and (hi is None or len(found) <= hi)
    allowed = f"{lo}" if lo == hi else f"{lo}..{'' if hi is None else hi}"
    seqs = [m.get("seq") for m in found[:8]]
    return {"ok": ok, "detail": f"{len(found)} matched (allowed {allowed}){f'; seqs {seqs}' if found else ''}"}


def validate(want: Mapping[str, Any], n_steps: int, where: str) -> None:
    """Reject an expectation that cannot mean anything, before the run starts."""
    _, _, q = split(want)
    for key in ("after_step", "before_step"):
        if key in q and not (isinstance(q[key], int) and 1 <= q[key] <= n_steps):
            raise ValueError(f"{where}: {key} must be a step number 1..{n_steps}, got {q[key]!r}")
    for key in ("count", "min", "max"):
        if key in q and not (isinstance(q[key], int) and q[key] >= 0):
            raise ValueError(f"{where}: {key} must be a whole number >= 0, got {q[key]!r}")
    if "payload" in want and not isinstance(want["payload"], dict):
        raise ValueError(f"{where}: payload must be a mapping of payload keys")
