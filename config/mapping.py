"""``uplink.mapping``: a platform's topics and payloads as templates, per record kind.

The model only holds the text; ``compile_mapping`` turns it into render functions (and every
problem into a located config problem), so ``headframe check`` and the running uplink use the
same compiler. Topic values are checked at render time as well, because a device name or a
payload field is only known then: an unsafe one is a ``RenderError`` (the uplink then sends the
record on its default JSON topic instead; nothing is lost).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from config.template import Compiler, Ctx, Env, Path, Ref, RenderError, excerpt, to_text
from config.types import StrictModel

Key = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Scalar = str | int | float | bool
KINDS = ("telemetry", "event", "alarm", "health")
#: Longest topic we publish (bytes, UTF-8). MQTT allows 65535; many cloud brokers stop at 256-1024.
MAX_TOPIC_BYTES = 1024
#: Longest value one placeholder may put into a topic.
MAX_TOPIC_VALUE = 128
Problem = tuple[tuple[str | int, ...], str, str]


class MappingRoute(StrictModel):
    """How one kind of record leaves: a topic template and a payload template."""

    topic: str
    payload: Any
    #: ``record``: one message per record; ``point``: one message per point (point.* everywhere).
    split: Literal["record", "point"] = "record"


class MappingSettings(StrictModel):
    """Templates per record kind; a kind with neither its route nor ``default`` goes out as plain JSON."""

    #: Zone of the ts_local* variables; unset: ``rules.alarms.timezone`` (the site's time).
    timezone: str | None = None
    #: Constants of this platform: ``${static.mine_code}``.
    static: dict[Key, Scalar] = Field(default_factory=dict)
    #: Lookups: ``${tables.device_code[source]}``; the entry ``"*"`` answers for keys not listed.
    tables: dict[Key, dict[str, Scalar]] = Field(default_factory=dict)
    telemetry: MappingRoute | None = None
    event: MappingRoute | None = None
    alarm: MappingRoute | None = None
    health: MappingRoute | None = None
    default: MappingRoute | None = None
    #: Also publish every record as today's chained JSON on its default topic (evidence stream).
    mirror_json: bool = False

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"an IANA time zone such as Asia/Shanghai or UTC, not {value!r}") from None
        return value

    def route_for(self, kind: str) -> MappingRoute | None:
        route: MappingRoute | None = getattr(self, kind)
        return route or self.default


TopicRender = Callable[[Ctx], str]
PayloadRender = Callable[[Ctx], Any]


@dataclass(frozen=True)
class CompiledRoute:
    topic: TopicRender
    payload: PayloadRender
    split: str


def compile_mapping(cfg: MappingSettings) -> tuple[dict[str, CompiledRoute], list[Problem]]:
    """Every route compiled (by route key: telemetry ... default), and every problem found."""
    compiler = Compiler(Env(cfg.static, cfg.tables))
    routes: dict[str, CompiledRoute] = {}
    problems: list[Problem] = []
    for key in (*KINDS, "default"):
        route: MappingRoute | None = getattr(cfg, key)
        if route is None:
            continue
        scope = "point" if route.split == "point" else "record"
        compiler.problems = []
        topic = _compile_topic(compiler, route.topic, (key, "topic"), scope)
        payload = compiler.tree(route.payload, (key, "payload"), scope)
        problems += [(e.path, e.found, e.expected) for e in compiler.problems]
        if topic is not None and payload is not None and not compiler.problems:
            routes[key] = CompiledRoute(topic, payload, route.split)
    return routes, problems


def cross_check(cfg: MappingSettings | None) -> list[Problem]:
    """Problems located under ``uplink.mapping`` (for ``Settings.cross_problems``)."""
    if cfg is None:
        return []
    return [(("uplink", "mapping", *loc), found, expected) for loc, found, expected in compile_mapping(cfg)[1]]


#: Characters no topic value may hold: level separator, wildcards, C0/C1 controls, line and
#: paragraph separators, byte-order mark.
_UNSAFE = re.compile("[/+#\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def topic_value_problem(value: str) -> str | None:
    """Why ``value`` must not become part of a topic, or None when it may."""
    if value and len(value) <= MAX_TOPIC_VALUE and _UNSAFE.search(value) is None:
        return None  # the common case, at C speed
    if not value:
        return "is empty (it would make an empty topic level)"
    if len(value) > MAX_TOPIC_VALUE:
        return f"is {len(value)} characters long (at most {MAX_TOPIC_VALUE})"
    for ch in value:
        if ch in "/+#":
            return f"contains {ch!r} (a topic level separator or wildcard)"
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029\ufeff":
            return f"contains the control character U+{ord(ch):04X}"
    return None


def _literal_problem(text: str) -> str | None:
    for ch in text:
        if ch in "+#":
            return f"the wildcard {ch!r}"
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            return f"the control character U+{ord(ch):04X}"
    return None


def _compile_topic(compiler: Compiler, text: str, path: Path, scope: str) -> TopicRender | None:
    parts = compiler.parts(text, path, scope)
    if parts is None:
        return None
    literal = "".join(p for p in parts if isinstance(p, str))
    bad = _literal_problem(literal)
    expected = "a topic without wildcards or control characters, e.g. 'kj/${static.mine_code}/${source}/data'"
    if bad is not None:
        return compiler.fail(path, f"{excerpt(text, 60)} with {bad}", expected)
    if not parts:
        return compiler.fail(path, "an empty topic", expected)
    if isinstance(parts[0], str) and parts[0].startswith("$"):
        return compiler.fail(path, f"{excerpt(text, 60)} (starts with '$', reserved for the broker)", expected)
    if len(literal.encode()) > MAX_TOPIC_BYTES:
        return compiler.fail(path, f"a topic of {len(literal.encode())} bytes", f"at most {MAX_TOPIC_BYTES} bytes")
    pieces: list[str | Callable[[Ctx], str]] = []  # adjacent text (literals, static values) merged
    for part in parts:
        if not isinstance(part, str):
            if part.kind == "any":
                return compiler.fail(
                    path, f"'${{{part.name}}}' (an object) in a topic", "scalar variables in topics (source, seq, static.*, ...)"
                )
            for value in part.values:  # static and table values are known now: check them now
                why = topic_value_problem(to_text(value))
                if why is not None:
                    return compiler.fail(
                        path, f"'${{{part.name}}}' = {excerpt(value)}, which {why}", "values safe in one topic level"
                    )
            if not part.const:
                pieces.append(_checked(part))
                continue
            part = to_text(part.values[0])
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += part
        else:
            pieces.append(part)
    if isinstance(pieces[0], str) and pieces[0].startswith("$"):
        return compiler.fail(path, f"{excerpt(text, 60)} (starts with '$', reserved for the broker)", expected)
    if len(pieces) == 1 and isinstance(pieces[0], str):
        fixed = pieces[0]
        return lambda _ctx: fixed

    def render(ctx: Ctx) -> str:
        topic = "".join([p if p.__class__ is str else p(ctx) for p in pieces])  # type: ignore[operator]
        # (up to MAX_TOPIC_BYTES // 4 characters it cannot be too long: UTF-8 takes at most 4 bytes each)
        if topic.startswith("$") or (len(topic) > MAX_TOPIC_BYTES // 4 and len(topic.encode()) > MAX_TOPIC_BYTES):
            raise RenderError(f"topic {excerpt(topic, 60)} starts with '$' or is longer than {MAX_TOPIC_BYTES} bytes")
        return topic

    return render


def _checked(ref: Ref) -> Callable[[Ctx], str]:
    get, name = ref.get, ref.name

    def value(ctx: Ctx) -> str:
        raw = get(ctx)
        if isinstance(raw, dict | list):
            raise RenderError(f"topic variable ${{{name}}} is {type(raw).__name__}, not a single value")
        text = to_text(raw)
        why = topic_value_problem(text)
        if why is not None:
            raise RenderError(f"topic variable ${{{name}}} = {excerpt(text)} {why}")
        return text

    return value
