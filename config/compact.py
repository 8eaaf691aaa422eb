"""Parsed config data laid out afresh before validation, so the parser's garbage can go back.

The validated settings keep references to strings of the parsed tree (point names, units,
hosts). Parsed by YAML, those strings sit among hundreds of thousands of short-lived parser
objects; once those are freed, every 1 MiB block of the Python allocator that still holds one
such string stays resident. At 100 devices x 100 points the agent kept ~20 MB of half-empty
blocks for its whole life. Here the tree goes through JSON (orjson, in C): encoded, the parsed
tree and the parser's garbage freed, decoded again compactly. Only when that is lossless: a tree
with anything JSON cannot carry exactly (a date, a non-string key, a str or int subclass,
NaN or infinity, an integer beyond 64 bits) is validated as it was parsed.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from config.yamlio import parse_plain

_EXACT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} does not round-trip through JSON")


def _finite(node: Any) -> bool:
    """No NaN or infinity anywhere (JSON would turn them into null)."""
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(_finite(v) for v in node.values())
    if isinstance(node, list):
        return all(_finite(v) for v in node)
    return True


def lossless_json(data: Any) -> bytes | None:
    """``data`` as JSON when decoding it gives back the same values of the same types, else None."""
    if not _finite(data):
        return None
    try:
        return orjson.dumps(data, default=_refuse, option=_EXACT)
    except (TypeError, orjson.JSONEncodeError):
        return None


def parse_compact(text: str) -> Any | None:
    """``parse_plain(text)``, rebuilt compactly when that is lossless (same values, same types)."""
    data = parse_plain(text)
    raw = lossless_json(data)
    if raw is None:
        return data
    del data  # the parsed tree and the parser's garbage go before the new tree is built
    return orjson.loads(raw)
