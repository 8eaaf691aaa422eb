"""The platform-mapping template language, compiled once at load (docs/mqtt.md, "Platform mappings").

Why a language of our own: a provincial platform's topic and JSON must be matchable from the
config file, but a config value must never run code. ``str.format`` reaches attributes
(``{0.__class__}``), Jinja and ``eval`` are programs. Here a template is a JSON tree whose
string leaves may hold ``${name}`` placeholders from a fixed, documented list of variables;
nothing else is interpreted. A whole-leaf ``"${name}"`` keeps the value's JSON type (a number
stays a number), ``"text ${name}"`` interpolates, ``$${`` is a literal ``${``. An object with
``$each: points`` repeats its ``$item`` (an array) or ``$key``/``$value`` (an object) per point.

Compiling turns each template into closures over a record context (``Ctx``, implemented by the
uplink), so rendering a record walks no strings. Every problem is reported with its key path
inside the template and what is allowed there.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from config.template_vars import VARIABLES

Path = tuple[str | int, ...]


class Ctx(Protocol):
    """What a compiled template reads: one record (and, inside ``$each``, one point)."""

    #: the current point inside ``$each`` / ``split: point`` (None at record level)
    point: Any

    def get(self, name: str) -> Any: ...
    def payload_at(self, keys: tuple[str, ...]) -> Any: ...
    def points(self) -> Sequence[Any]: ...
    def with_point(self, point: Any) -> Ctx: ...  # a context whose ``point`` may be reassigned
    def memo(self, key: str, fn: Callable[[Ctx], Any]) -> Any: ...  # fn(ctx) once per record


Render = Callable[[Ctx], Any]


_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_NAME = re.compile(rf"^[A-Za-z_][A-Za-z0-9_]*(?:\.{_SEGMENT})*$")
_TABLE = re.compile(r"^tables\.([A-Za-z_][A-Za-z0-9_]*)\[([^\[\]]*)\]$")
_DIRECTIVES = ("$each", "$item", "$key", "$value")
#: The only collection ``$each`` walks today.
EACH_SOURCES = ("points",)
MAX_INT = 2**63


class TemplateError(ValueError):
    """A template that must not be used: where (path inside the template), what, what instead."""

    def __init__(self, path: Path, found: str, expected: str) -> None:
        self.path, self.found, self.expected = path, found, expected
        super().__init__(f"{'.'.join(map(str, path))}: found {found}; expected {expected}")


class RenderError(Exception):
    """A record whose values cannot be put into this template (unsafe topic value, no table entry)."""


def excerpt(value: Any, limit: int = 40) -> str:
    """A value for an error message: escaped (no control characters reach a log) and short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(value: Any) -> str:
    """A value inside a string: text as is, null as empty, everything else as its JSON."""
    if value.__class__ is str or isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Env:
    """What compiling may resolve now: the per-uplink constants."""

    static: Mapping[str, Any]
    tables: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Ref:
    """A resolved placeholder: its getter, whether it is a load-time constant, and its kind."""

    name: str
    get: Render
    const: bool
    kind: str
    values: tuple[Any, ...] = ()  # every value it can take, when known at load (static, tables)
    scope: str = "record"  # "point" when it reads the current point


class Compiler:
    """Compiles templates against ``env``; collects every problem instead of stopping at the first."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.problems: list[TemplateError] = []

    # -------------------------------------------------------------- placeholders
    def ref(self, inner: str, path: Path, scope: str) -> Ref | None:
        table = _TABLE.match(inner)
        if table:
            return self._table_ref(table.group(1), table.group(2), path, scope)
        if not _NAME.match(inner):
            self.fail(path, f"placeholder '${{{inner}}}'", "${name} with a documented variable name (no spaces)")
            return None
        if inner.startswith("static."):
            key = inner[len("static.") :]
            if key not in self.env.static:
                self.fail(path, f"'${{{inner}}}' (no such key in mapping.static)", _choices("static.", self.env.static))
                return None
            value = self.env.static[key]
            return Ref(inner, lambda _ctx: value, True, "scalar", (value,))
        if inner.startswith("payload."):
            keys = tuple(inner.split(".")[1:])
            return Ref(inner, lambda ctx: ctx.payload_at(keys), False, "maybe")  # a scalar or not: seen at render
        var = VARIABLES.get(inner)
        if var is None:
            names = [*VARIABLES, *(f"static.{k}" for k in self.env.static)]
            close = difflib.get_close_matches(inner, names, n=1)
            hint = f" (did you mean ${{{close[0]}}}?)" if close else ""
            self.fail(
                path,
                f"unknown variable '${{{inner}}}'{hint}",
                "one of " + ", ".join(VARIABLES) + ", static.<key>, tables.<name>[<variable>], payload.<key> "
                "(docs/mqtt.md, Platform mappings)",
            )
            return None
        if var.scope == "point" and scope != "point":
            self.fail(
                path, f"'${{{inner}}}' outside a point", "point.* only inside '$each: points' or in a route with split: point"
            )
            return None
        if var.scope == "point":  # straight from the point's slot, no lookup by name
            return Ref(inner, operator.attrgetter(inner), False, var.kind, scope="point")
        return Ref(inner, lambda ctx: ctx.get(inner), False, var.kind)

    def _table_ref(self, name: str, key_name: str, path: Path, scope: str) -> Ref | None:
        table = self.env.tables.get(name)
        if table is None:
            self.fail(path, f"'${{tables.{name}[{key_name}]}}' (no table '{name}')", _choices("tables.", self.env.tables))
            return None
        key = self.ref(key_name, path, scope)
        if key is None:
            return None
        if key.kind == "any":
            self.fail(path, f"table key '{key_name}'", "a scalar variable as the key (source, point.name, ...)")
            return None
        get_key, default = key.get, table.get("*")

        def lookup(ctx: Ctx) -> Any:
            k = to_text(get_key(ctx))
            if k in table:
                return table[k]
            if default is not None:
                return default
            raise RenderError(f"table '{name}' has no entry for {key_name}={excerpt(k)} and no '*' default")

        label = f"tables.{name}[{key_name}]"
        if key.scope == "point":
            return Ref(label, lookup, False, "scalar", tuple(table.values()), scope="point")
        return Ref(label, lambda ctx: ctx.memo(label, lookup), False, "scalar", tuple(table.values()))

    # -------------------------------------------------------------- strings
    def parts(self, text: str, path: Path, scope: str) -> list[str | Ref] | None:
        """Literal text and placeholders, in order; None after a problem."""
        out: list[str | Ref] = []
        buf: list[str] = []
        i, ok = 0, True
        while True:
            j = text.find("$", i)
            if j < 0:
                buf.append(text[i:])
                break
            buf.append(text[i:j])
            if text.startswith("$${", j):
                buf.append("${")
                i = j + 3
            elif text.startswith("${", j):
                k = text.find("}", j + 2)
                inner = text[j + 2 : k] if k >= 0 else text[j + 2 :]
                if k < 0 or "$" in inner or "{" in inner:
                    self.fail(
                        path, f"malformed placeholder in {excerpt(text, 60)}", "${name} closed by '}' ('$${' for a literal '${')"
                    )
                    return None
                ref = self.ref(inner, path, scope)
                ok = ok and ref is not None
                if ref is not None:
                    if "".join(buf):
                        out.append("".join(buf))
                    buf = []
                    out.append(ref)
                i = k + 1
            else:
                buf.append("$")
                i = j + 1
        tail = "".join(buf)
        if tail:
            out.append(tail)
        return out if ok else None

    def string(self, text: str, path: Path, scope: str) -> Render | None:
        parts = self.parts(text, path, scope)
        if parts is None:
            return None
        if len(parts) == 1 and isinstance(parts[0], Ref):
            return parts[0].get  # a whole-leaf placeholder keeps its type
        return _interpolate(parts)

    # -------------------------------------------------------------- trees
    def tree(self, node: Any, path: Path, scope: str) -> Render | None:
        """A JSON-able template tree; every problem is recorded with its path."""
        if isinstance(node, str):
            return self.string(node, path, scope)
        if isinstance(node, bool) or node is None:
            return _const(node)
        if isinstance(node, int):
            if not -MAX_INT <= node < MAX_INT:
                return self.fail(path, f"integer {excerpt(node)}", "an integer that fits 64 bits")
            return _const(node)
        if isinstance(node, float):
            if not math.isfinite(node):
                return self.fail(path, f"{node} (not valid in JSON)", "a finite number")
            return _const(node)
        if isinstance(node, list):
            items = [self.tree(v, (*path, i), scope) for i, v in enumerate(node)]
            if any(it is None for it in items):
                return None
            fns = [it for it in items if it is not None]
            if all(f in _CONSTANTS for f in fns):
                return _const([_CONSTANTS[f] for f in fns])
            return lambda ctx: [f(ctx) for f in fns]
        if isinstance(node, dict):
            return self._object(node, path, scope)
        return self.fail(
            path, f"a {type(node).__name__} value", "JSON values only: text, number, true/false, null, list, mapping"
        )

    def _object(self, node: dict[Any, Any], path: Path, scope: str) -> Render | None:
        if "$each" in node:
            return self._each(node, path, scope)
        entries: list[tuple[Render, Render]] = []
        ok = True
        for key, value in node.items():
            if not isinstance(key, str):
                self.fail(
                    (*path, key if isinstance(key, int) and not isinstance(key, bool) else str(key)),
                    f"key {excerpt(key)} ({type(key).__name__})",
                    "text keys (quote it: '\"1\"')",
                )
                ok = False
                continue
            if key.startswith("$") and not key.startswith("$$") and not key.startswith("${"):
                self.fail(
                    (*path, key), f"key '{key}'", f"{', '.join(_DIRECTIVES)} together with $each, or '$$' for a literal '$'"
                )
                ok = False
                continue
            label = key[1:] if key.startswith("$$") and not key.startswith("$${") else key
            kfn = self.string(label, (*path, key), scope)
            vfn = self.tree(value, (*path, key), scope)
            if kfn is None or vfn is None:
                ok = False
                continue
            entries.append((kfn, vfn))
        if not ok:
            return None
        if all(k in _CONSTANTS and v in _CONSTANTS for k, v in entries):
            return _const({_CONSTANTS[k]: _CONSTANTS[v] for k, v in entries})
        if all(k in _CONSTANTS for k, _ in entries):
            fixed = [(_CONSTANTS[k], v) for k, v in entries]
            return lambda ctx: {k: v(ctx) for k, v in fixed}
        texts = [(_as_text(k), v) for k, v in entries]
        return lambda ctx: {k(ctx): v(ctx) for k, v in texts}

    def _each(self, node: dict[Any, Any], path: Path, scope: str) -> Render | None:
        source = node["$each"]
        extra = sorted(str(k) for k in node if k not in _DIRECTIVES)
        if source not in EACH_SOURCES:
            return self.fail((*path, "$each"), excerpt(source), f"one of {list(EACH_SOURCES)}")
        if scope == "point":
            return self.fail(
                (*path, "$each"), "$each inside a point", "$each only at record level (not nested, not with split: point)"
            )
        if extra:
            return self.fail(
                (*path, extra[0]), f"key '{extra[0]}' beside $each", "only $each with $item, or $each with $key and $value"
            )
        if "$item" in node and "$key" not in node and "$value" not in node:
            item = self.tree(node["$item"], (*path, "$item"), "point")
            if item is None:
                return None

            def as_array(ctx: Ctx) -> list[Any]:
                pc, out = ctx.with_point(None), []  # one point context per record, moved along
                for p in ctx.points():
                    pc.point = p
                    out.append(item(pc))
                return out

            return as_array
        if "$key" in node and "$value" in node and "$item" not in node:
            if not isinstance(node["$key"], str):
                return self.fail((*path, "$key"), excerpt(node["$key"]), "a text template such as '${point.name}'")
            key = self.string(node["$key"], (*path, "$key"), "point")
            value = self.tree(node["$value"], (*path, "$value"), "point")
            if key is None or value is None:
                return None
            kfn, vfn = _as_text(key), value

            def as_object(ctx: Ctx) -> dict[str, Any]:
                pc, out = ctx.with_point(None), {}
                for p in ctx.points():
                    pc.point = p
                    k = kfn(pc)
                    if k in out:  # two points under one key: one would vanish; the record goes out as JSON
                        raise RenderError(f"two points render to the same key {excerpt(k)}: one would be lost")
                    out[k] = vfn(pc)
                return out

            return as_object
        return self.fail(path, "$each without a clear shape", "$each with $item (an array), or with $key and $value (an object)")

    def fail(self, path: Path, found: str, expected: str) -> Render | None:
        """Record a problem; returns None so a caller can ``return self.fail(...)``."""
        self.problems.append(TemplateError(path, found, expected))
        return None


def _choices(prefix: str, keys: Mapping[str, Any]) -> str:
    return "one of " + ", ".join(prefix + k for k in keys) if keys else f"a key defined under mapping.{prefix.rstrip('.')}"


#: The value of every render function that returns a constant: lets a constant subtree be
#: built once at compile time, and an object with constant keys skip the key functions.
_CONSTANTS: weakref.WeakKeyDictionary[Render, Any] = weakref.WeakKeyDictionary()


def _const(value: Any) -> Render:
    def const(_ctx: Ctx) -> Any:
        return value

    _CONSTANTS[const] = value
    return const


def _as_text(fn: Render) -> Render:
    return lambda ctx: to_text(fn(ctx))


def _interpolate(parts: list[str | Ref]) -> Render:
    if all(isinstance(p, str) for p in parts):
        return _const("".join(p for p in parts if isinstance(p, str)))
    pieces: list[str | Render] = [p if isinstance(p, str) else p.get for p in parts]
    return lambda ctx: "".join([p if p.__class__ is str else to_text(p(ctx)) for p in pieces])  # type: ignore[operator]
