"""A scenario's changes to the generated agent config: dotted paths, list indices, placeholders.

``config:`` in a scenario maps a dotted path to a value, applied in order to the config
``hil.site.Site.config`` writes: ``rules.site.sections.0.clear_after: 6s`` sets a key (a
numeric part indexes a list), ``cameras.+: {...}`` appends to a list. String values may use
``${camera:NAME}`` (the URL of a simulated camera stream, e.g. ``shaft``, ``seal``) and
``${today}`` / ``${today+N}`` / ``${today-N}`` (a local date in the site's time zone), so a
scenario can approve a rectification window for the day it runs.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)(?::([A-Za-z0-9_-]+)|([+-]\d+))?\}")


class OverlayError(ValueError):
    """A path that does not fit the generated config; the message names the path."""


def expand(value: Any, camera_url: Callable[[str], str], timezone: str) -> Any:
    """Placeholders replaced in every string of ``value`` (nested lists and mappings too)."""
    if isinstance(value, dict):
        return {k: expand(v, camera_url, timezone) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, camera_url, timezone) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name, arg, delta = m.group(1), m.group(2), m.group(3)
        if name == "camera" and arg:
            return camera_url(arg)
        if name == "today" and arg is None:
            day = dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date() + dt.timedelta(days=int(delta or 0))
            return day.isoformat()
        raise OverlayError(f"unknown placeholder {m.group(0)!r}; known: ${{camera:NAME}}, ${{today}}, ${{today+N}}")

    return _PLACEHOLDER.sub(one, value)


def apply(doc: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` (dotted path → value) to ``doc`` in place, in order; returns ``doc``."""
    for path, value in changes.items():
        parts = path.split(".")
        node: Any = doc
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, path, parts[: i + 1])
        last = parts[-1]
        if isinstance(node, list):
            if last == "+":
                node.append(value)
            elif last.isdigit() and int(last) < len(node):
                node[int(last)] = value
            else:
                raise OverlayError(f"config: {path}: {last!r} is not an index of a list of {len(node)} (or '+' to append)")
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise OverlayError(f"config: {path}: {'.'.join(parts[:-1])} is a {type(node).__name__}, not a mapping or list")
    return doc


def _child(node: Any, part: str, path: str, upto: list[str]) -> Any:
    if isinstance(node, dict):
        if part not in node:
            node[part] = {}
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise OverlayError(f"config: {path}: no {'.'.join(upto)} in the generated config")
