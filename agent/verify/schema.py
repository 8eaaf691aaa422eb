"""Field types of the agent's evidence records, checked before any is read.

Every evidence record is hostile input to the verifier: whoever holds a capture can write one
(unkeyed, or with any shape at all). A wrong type must become "malformed evidence record seq N",
never a traceback that hides the rest of the report.
"""

from __future__ import annotations

from typing import Any

_STR, _INT, _NUM, _BOOL, _DICT, _LIST = "a string", "an integer", "a number", "true or false", "an object", "a list"


def _is(v: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(v, str)
    if kind == _INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == _NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == _BOOL:
        return isinstance(v, bool)
    return isinstance(v, dict) if kind == _DICT else isinstance(v, list)


#: field -> (type, required); ``None`` is accepted for every optional field.
FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "records_dropped": {
        "reason": (_STR, True),
        "count": (_INT, True),
        "by_kind": (_DICT, False),
        "ranges": (_LIST, False),
        "seqs_assigned": (_BOOL, False),
        "count_is_upper_bound": (_BOOL, False),
    },
    "gap": {
        "cause": (_STR, True),
        "from": (_DICT, False),
        "to": (_DICT, False),
        "duration_s": (_NUM, False),
        "energy": (_LIST, False),
        "camera_faults": (_LIST, False),
    },
    "agent_started": {"previous_run": (_DICT, False), "version": (_STR, False), "boot": (_DICT, False)},
    "config_applied": {"trigger": (_STR, False), "hash": (_STR, False), "changed": (_LIST, False)},
    "config_reload_rejected": {"trigger": (_STR, False), "hash": (_STR, False), "changed": (_LIST, False)},
    "power_failing": {"battery_charge": (_NUM, False), "runtime_s": (_NUM, False)},
    "mains_lost": {"state": (_STR, False), "text": (_STR, False)},
    "gateway_dark_while_site_ran": {"state": (_STR, False), "text": (_STR, False), "delta_kwh": (_NUM, False)},
}
#: nested objects: (event, field) -> their own fields
NESTED: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {
    ("records_dropped", "ranges"): {"first": (_INT, True), "last": (_INT, True), "prev": (_STR, True), "chain": (_STR, True)},
    ("gap", "from"): {"seq": (_INT, False), "ts": (_STR, False)},
    ("gap", "to"): {"seq": (_INT, False), "ts": (_STR, False)},
    ("gap", "energy"): {
        "source": (_STR, False),
        "point": (_STR, False),
        "before_kwh": (_NUM, False),
        "after_kwh": (_NUM, False),
        "delta_kwh": (_NUM, False),
        "unknown": (_STR, False),
    },
    ("gap", "camera_faults"): {"source": (_STR, False), "alarm": (_STR, False), "from": (_STR, False), "to": (_STR, False)},
    ("agent_started", "previous_run"): {"ended": (_STR, False), "detail": (_STR, False)},
}


def _fields(obj: dict[str, Any], spec: dict[str, tuple[str, bool]], where: str) -> str | None:
    for name, (kind, required) in spec.items():
        v = obj.get(name)
        if v is None and not required:
            continue
        if not _is(v, kind):
            return f'{where}"{name}" must be {kind}, found {type(v).__name__}'
    return None


def malformed(name: str, payload: dict[str, Any]) -> str | None:
    """Why this evidence payload is malformed (the first wrong field), or None if its types are right."""
    spec = FIELDS.get(name)
    if spec is None:
        return None
    bad = _fields(payload, spec, "")
    if bad:
        return bad
    for (event, field), inner in NESTED.items():
        if event != name or payload.get(field) is None:
            continue
        value = payload[field]
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if not isinstance(item, dict):
                return f'"{field}" must hold objects, found {type(item).__name__}'
            bad = _fields(item, inner, f"{field}[{i}]: " if isinstance(value, list) else f"{field}: ")
            if bad:
                return bad
    by_kind = payload.get("by_kind") or {}
    if name == "records_dropped" and not all(_is(v, _INT) for v in by_kind.values()):
        return '"by_kind" must map each kind to an integer count'
    return None
