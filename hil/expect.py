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


def check_spec(spec: Any, where: str = "match") -> dict[str, Any]:
    """A spec as it is written in a scenario: a mapping whose operator mappings use known operators."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"{where}: a non-empty mapping of record keys to values")

    def walk(value: Any, at: str) -> None:
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
                elif op in _COMPARE and not _number(arg):
                    raise ValueError(f"{at}: {op} needs a number, not {arg!r}")
                elif op == "$in" and not isinstance(arg, list):
                    raise ValueError(f"{at}: $in needs a list")

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
