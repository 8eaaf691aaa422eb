"""Matching received records against a scenario's expectations.

A match spec is a mapping: ``kind``, ``source``, ``synced`` and ``attachments`` compare with the
record envelope, every other key with the payload. A dotted key reaches into nested objects,
and a numeric part indexes a list (``evidence.power.0.point``). A value is compared for equality
unless it is an operator mapping (every key starts with ``$``):

``$gt $ge $lt $le $ne`` (numbers), ``$in`` (one of a list), ``$exists`` (true/false),
``$len`` (the length, equal to a number or matching another operator mapping), ``$any``
(some element of a list matches a nested spec) and ``$all`` (a list of nested specs, each
matched by some element).

Records arrive at least once (QoS 1): counts and sequences look at distinct seqs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

ENVELOPE = frozenset({"kind", "source", "synced", "attachments"})
OPERATORS = frozenset({"$gt", "$ge", "$lt", "$le", "$ne", "$in", "$exists", "$len", "$any", "$all"})

_MISSING = object()


def _lookup(node: Any, dotted: str) -> Any:
    """``a.b.0.c`` → node["a"]["b"][0]["c"]; a key that is there with a dot in its name wins."""
    if isinstance(node, dict) and dotted in node:
        return node[dotted]
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def is_operator(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) and k.startswith("$") for k in value)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda v, x: _number(v) and _number(x) and v > x,
    "$ge": lambda v, x: _number(v) and _number(x) and v >= x,
    "$lt": lambda v, x: _number(v) and _number(x) and v < x,
    "$le": lambda v, x: _number(v) and _number(x) and v <= x,
}


def _value_ok(actual: Any, want: Any) -> bool:
    if not is_operator(want):
        return actual is not _MISSING and actual == want
    for op, arg in want.items():
        if op == "$exists":
            if (actual is not _MISSING) != bool(arg):
                return False
            continue
        if actual is _MISSING:
            return False
        if op in _COMPARE:
            if not _COMPARE[op](actual, arg):
                return False
        elif op == "$ne":
            if actual == arg:
                return False
        elif op == "$in":
            if actual not in arg:
                return False
        elif op == "$len":
            if not isinstance(actual, list | dict | str) or not _value_ok(len(actual), arg):
                return False
        elif op in ("$any", "$all"):
            specs = [arg] if op == "$any" else arg
            if not isinstance(actual, list) or not all(
                any(isinstance(item, dict) and _spec_ok(item, spec) for item in actual) for spec in specs
            ):
                return False
        else:
            raise ValueError(f"unknown operator {op!r}; known: {', '.join(sorted(OPERATORS))}")
    return True


def _spec_ok(node: dict[str, Any], spec: dict[str, Any]) -> bool:
    return all(_value_ok(_lookup(node, key), value) for key, value in spec.items())


def matches(msg: dict[str, Any], want: dict[str, Any]) -> bool:
    """kind/source/synced/attachments compare with the envelope; every other key with the payload."""
    payload = msg.get("payload", {})
    for key, value in want.items():
        root = key.split(".", 1)[0]
        target = msg if root in ENVELOPE else payload
        if not _value_ok(_lookup(target, key), value):
            return False
    return True


def is_fact(value: Any) -> bool:
    """``"${name}"``: a fact of the run, put in by ``judge``/``select`` (see below)."""
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def check_spec(spec: Any, where: str = "match", facts: bool = False) -> dict[str, Any]:
    """A spec as it is written in a scenario: a mapping whose operator mappings use known operators.

    ``facts``: the spec is an expectation (``records``/``absent``/``wait_for``) whose
    ``"${name}"`` values are the run's facts; elsewhere (``sequence``, ``count``) nothing
    resolves them, so they are refused rather than compared as text."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"{where}: a non-empty mapping of record keys to values")

    def walk(value: Any, at: str) -> None:
        if is_fact(value) and not facts:
            raise ValueError(f"{at}: a run fact ({value}) only in records, absent and wait_for")
        if isinstance(value, list):
            for j, item in enumerate(value):
                walk(item, f"{at}.{j}")
        if is_operator(value):
            for op, arg in value.items():
                if op not in OPERATORS:
                    raise ValueError(f"{at}: unknown operator {op!r}; known: {', '.join(sorted(OPERATORS))}")
                if op == "$any":
                    check_spec(arg, f"{at}.$any")
                elif op == "$all":
                    if not isinstance(arg, list) or not arg:
                        raise ValueError(f"{at}: $all needs a non-empty list of specs")
                    for j, sub in enumerate(arg):
                        check_spec(sub, f"{at}.$all[{j}]")
                elif op == "$len":
                    walk(arg, f"{at}.$len")
                elif op in _COMPARE and is_fact(arg):
                    walk(arg, f"{at}.{op}")
                elif op in _COMPARE and not _number(arg):
                    raise ValueError(f"{at}: {op} needs a number, not {arg!r}")
                elif op == "$in" and not isinstance(arg, list):
                    raise ValueError(f"{at}: $in needs a list")
                elif op in ("$in", "$ne"):
                    walk(arg, f"{at}.{op}")

    for key, value in spec.items():
        walk(value, f"{where}.{key}")
    return spec


def distinct(msgs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One message per seq (the first received), in seq order."""
    seen: dict[int, dict[str, Any]] = {}
    for m in msgs:
        seq = m.get("seq")
        if isinstance(seq, int) and seq not in seen:
            seen[seq] = m
    return [seen[s] for s in sorted(seen)]


def count(msgs: Sequence[dict[str, Any]], want: dict[str, Any]) -> int:
    """Distinct records (by seq) that match."""
    return sum(1 for m in distinct(msgs) if matches(m, want))


def sequence(msgs: Sequence[dict[str, Any]], steps: Sequence[dict[str, Any]]) -> tuple[bool, str]:
    """Whether records matching ``steps`` appear in that order of seq; says where it stopped."""
    found: list[int] = []
    ordered = distinct(msgs)
    i = 0
    for n, want in enumerate(steps):
        while i < len(ordered) and not matches(ordered[i], want):
            i += 1
        if i == len(ordered):
            after = f" after seq {found[-1]}" if found else ""
            return False, f"step {n + 1} {want} not seen{after} (matched seqs {found})"
        found.append(ordered[i]["seq"])
        i += 1
    return True, f"in order at seqs {found}"


# --------------------------------------------------------------------------------------------
# Windows, counts and run facts (the fault scenarios): an expectation in ``records``/``absent``
# or a ``wait_for`` record may also say WHEN and HOW OFTEN, and compare with what was injected.
#
# Qualifiers (taken out of the spec before matching): ``after_step``/``before_step: N`` keep
# records whose ``ts`` is at/after, or before, the moment step N started (so "only after the
# fault" can be said); ``count`` (exactly), ``min`` (default 1) and ``max`` bound how many
# distinct records (by seq) match. ``payload: {...}`` holds payload keys that collide with the
# envelope or the qualifiers (a tamper alarm's ``kind``, records_dropped's ``count``). A ``*``
# part of a dotted key is any one key or element (``values.*.q: bad``: some point is bad). A
# value ``"${name}"`` is a fact of the run (``ScenarioRun.facts()``, e.g. ``${dlt_corrupted}``:
# answers the meter simulator corrupted), so a count can be compared with what was injected.
# --------------------------------------------------------------------------------------------

QUALIFIERS = ("after_step", "before_step", "count", "min", "max")


def split(want: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(envelope conditions, payload conditions, qualifiers) of one expectation."""
    quals = {k: v for k, v in want.items() if k in QUALIFIERS}
    env = {k: v for k, v in want.items() if k.split(".", 1)[0] in ENVELOPE}
    cond = {k: v for k, v in want.items() if k not in quals and k not in env and k != "payload"}
    cond.update(want.get("payload") or {})
    return env, cond, quals


def _lookup_all(node: Any, dotted: str) -> list[Any]:
    """Every value at ``dotted``, a ``*`` part fanning out over a mapping's values or a list."""
    if "*" not in dotted.split("."):
        return [_lookup(node, dotted)]
    nodes = [node]
    for part in dotted.split("."):
        nxt: list[Any] = []
        for n in nodes:
            if part == "*":
                nxt.extend(n.values() if isinstance(n, dict) else n if isinstance(n, list) else [])
            elif (found := _lookup(n, part)) is not _MISSING:
                nxt.append(found)
        nodes = nxt
    return nodes or [_MISSING]


def _resolve(value: Any, facts: dict[str, Any]) -> Any:
    """``"${name}"`` → the run's fact (inside operator mappings and lists too)."""
    if is_fact(value):
        name = value[2:-1]
        if name not in facts:
            raise KeyError(f"unknown run fact {value!r} (known: {', '.join(sorted(facts)) or 'none'})")
        return facts[name]
    if isinstance(value, dict):
        return {k: _resolve(v, facts) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, facts) for v in value]
    return value


def matches_in(msg: dict[str, Any], want: dict[str, Any], facts: dict[str, Any] | None = None) -> bool:
    """``matches`` for a qualified expectation: qualifiers ignored, ``payload:``, ``*`` and facts."""
    env, cond, _ = split(want)
    facts = facts or {}
    if not all(_value_ok(_lookup(msg, k), _resolve(v, facts)) for k, v in env.items()):
        return False
    payload = msg.get("payload", {})
    return all(any(_value_ok(c, _resolve(v, facts)) for c in _lookup_all(payload, k)) for k, v in cond.items())


def record_time(msg: dict[str, Any]) -> float | None:
    """The record's ``ts`` (ISO, ms, Z) as epoch seconds."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(msg["ts"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return None


def select(
    msgs: Sequence[dict[str, Any]], want: dict[str, Any], step_times: dict[int, float], facts: dict[str, Any]
) -> list[dict[str, Any]]:
    """The distinct records (by seq) that meet the expectation inside its window."""
    _, _, q = split(want)
    lo = step_times.get(q["after_step"]) if "after_step" in q else None
    hi = step_times.get(q["before_step"]) if "before_step" in q else None
    if ("after_step" in q and lo is None) or ("before_step" in q and hi is None):
        return []  # the step never ran (the scenario failed before it): nothing is in its window
    out = []
    for m in distinct(msgs):
        if not matches_in(m, want, facts):
            continue
        ts = record_time(m)
        if lo is not None and (ts is None or ts < lo - 0.001):  # ts has ms resolution
            continue
        if hi is not None and (ts is None or ts >= hi):
            continue
        out.append(m)
    return out


def bounds(want: dict[str, Any], absent: bool = False) -> tuple[int, int | None]:
    """(min, max) number of matching records the expectation allows."""
    _, _, q = split(want)
    if absent:
        return 0, 0
    if "count" in q:
        return int(q["count"]), int(q["count"])
    return int(q.get("min", 1)), (int(q["max"]) if "max" in q else None)


def judge(
    msgs: Sequence[dict[str, Any]],
    want: dict[str, Any],
    step_times: dict[int, float],
    facts: dict[str, Any],
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


def validate(want: dict[str, Any], n_steps: int, where: str) -> None:
    """Reject an expectation that cannot mean anything, before the run starts."""
    env, cond, q = split(want)
    for key in ("after_step", "before_step"):
        if key in q and not (isinstance(q[key], int) and 1 <= q[key] <= n_steps):
            raise ValueError(f"{where}: {key} must be a step number 1..{n_steps}, got {q[key]!r}")
    for key in ("count", "min", "max"):
        if key in q and not (isinstance(q[key], int) and q[key] >= 0):
            raise ValueError(f"{where}: {key} must be a whole number >= 0, got {q[key]!r}")
    if "payload" in want and not isinstance(want["payload"], dict):
        raise ValueError(f"{where}: payload must be a mapping of payload keys")
    if env or cond:  # the operators' arguments too, inside ``payload:`` as well
        check_spec({**env, **cond}, where, facts=True)
