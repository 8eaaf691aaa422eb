"""Hostile values: device names and payload fields with '/', '#', '+', quotes, control characters,
huge strings. A topic value that is unsafe is refused at render time and the record goes out as
plain chained JSON (never lost); payload strings are JSON-escaped, never re-interpreted."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from buffer.record import Kind, Record
from config import ConfigError, load_settings_text
from config.mapping import topic_value_problem
from config.template import Compiler, Env, TemplateError
from tests.mapping.helpers import TS, formatter_yaml, messages, stored
from tests.mapping.test_template import mapping

ROUTE = mapping('event:\n  topic: "p/${source}/${payload.name}"\n  payload: {name: "${payload.name}", text: "n=${payload.name}"}')

HOSTILE_TOPIC = [
    "a/b",
    "#",
    "+",
    "cam/#",
    "x\x00y",
    "line\nbreak",
    "\x1b[31mred",
    "",
    "x" * 129,
    "del\x7f",
    "sep\u2028",
]


@pytest.mark.parametrize("name", HOSTILE_TOPIC, ids=[f"h{i}" for i in range(len(HOSTILE_TOPIC))])
def test_an_unsafe_topic_value_falls_back_to_plain_json_and_is_counted(tmp_path: Path, name: str) -> None:
    fmt = formatter_yaml(ROUTE)
    recs = stored(tmp_path, [Record("cam-1", Kind.EVENT, {"event": "e", "name": name}, ts=TS)])
    [(topic, body)] = messages(fmt, recs)
    assert topic == "headframe/mine-a/gw-01/event/cam-1"
    assert body == orjson.loads(recs[0].doc), "the chained record itself, nothing lost"
    c = fmt.counters()
    assert (c["mapped"], c["fallback"]) == (0, 1)
    assert "${payload.name}" in c["last_error"] and "\x00" not in c["last_error"] and "\n" not in c["last_error"]


def test_safe_unicode_names_pass_and_payload_strings_are_escaped_not_interpreted(tmp_path: Path) -> None:
    nasty = 'q"uote\\ }{ ${seq} $${x} \x00\x01\n' + "井" * 10
    fmt = formatter_yaml(
        mapping('event:\n  topic: "p/${source}"\n  payload: {name: "${payload.name}", text: "n=${payload.name}"}')
    )
    recs = stored(tmp_path, [Record("井口-1", Kind.EVENT, {"event": "e", "name": nasty}, ts=TS)])
    [(topic, body)] = messages(fmt, recs)
    assert topic == "p/井口-1"
    assert body == {"name": nasty, "text": "n=" + nasty}


def test_a_huge_value_in_a_payload_is_carried_whole(tmp_path: Path) -> None:
    big = "x" * 2_000_000
    fmt = formatter_yaml(mapping('event:\n  topic: "p/${source}"\n  payload: {name: "${payload.name}"}'))
    [(_, body)] = messages(fmt, stored(tmp_path, [Record("c", Kind.EVENT, {"event": "e", "name": big}, ts=TS)]))
    assert body == {"name": big}


def test_a_topic_longer_than_1024_bytes_falls_back(tmp_path: Path) -> None:
    fmt = formatter_yaml(mapping("event:\n  topic: " + '"' + "/".join(["${payload.name}"] * 9) + '"\n  payload: 1'))
    recs = stored(tmp_path, [Record("c", Kind.EVENT, {"event": "e", "name": "井" * 128}, ts=TS)])  # 384 bytes each
    [(topic, _)] = messages(fmt, recs)
    assert topic == "headframe/mine-a/gw-01/event/c" and "1024 bytes" in str(fmt.counters()["last_error"])
    short = stored(tmp_path / "2", [Record("c", Kind.EVENT, {"event": "e", "name": "井" * 30}, ts=TS)])
    assert messages(fmt, short)[0][0] == "/".join(["井" * 30] * 9)


def test_a_hostile_point_name_in_a_split_topic_falls_back(tmp_path: Path) -> None:
    fmt = formatter_yaml(mapping('telemetry:\n  split: point\n  topic: "m/${point.name}"\n  payload: "${point.value}"'))
    vals = {"ok": {"v": 1, "q": "good"}, "evil/#": {"v": 2, "q": "good"}}
    recs = stored(tmp_path, [Record("m1", Kind.TELEMETRY, {"values": vals}, ts=TS)])
    out = messages(fmt, recs)
    assert out == [("headframe/mine-a/gw-01/telemetry/m1", orjson.loads(recs[0].doc))], "all of the record, once"


def test_a_time_no_datetime_can_hold_falls_back(tmp_path: Path) -> None:
    fmt = formatter_yaml(mapping('event: {topic: "t/${ts_local}", payload: 1}'))
    recs = stored(tmp_path, [Record("c", Kind.EVENT, {"event": "e"}, ts=3e11)])
    [(topic, _)] = messages(fmt, recs)
    assert topic == "headframe/mine-a/gw-01/event/c" and fmt.counters()["fallback"] == 1


# --------------------------------------------------------------------- fuzz-ish
TEXT = st.text(st.characters(codec="utf-8"), max_size=200)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_topic_values_either_refused_or_exactly_one_clean_level(value: str) -> None:
    why = topic_value_problem(value)
    clean = value and len(value) <= 128 and not any(ch in "/+#" or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value)
    if why is None:
        assert clean and "\u2028" not in value
    else:
        assert not clean or any(ch in "\u2028\u2029\ufeff" for ch in value)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_template_text_compiles_or_raises_a_template_error_only(text: str) -> None:
    compiler = Compiler(Env({"k": "v"}, {"t": {"a": 1}}))
    compiler.tree({"a": text, text: 1}, ("payload",), "record")  # never raises: problems are collected
    assert all(isinstance(p, TemplateError) and p.path[0] == "payload" for p in compiler.problems)


class _Ctx:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def get(self, name: str) -> Any:
        return {"seq": 7, "source": "s"}[name]

    def payload_at(self, keys: tuple[str, ...]) -> Any:
        return self.payload.get(keys[0])

    def points(self) -> list[Any]:
        return []

    def with_point(self, point: Any) -> _Ctx:
        return self


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_any_value_whole_leaf_round_trips_and_interpolated_is_its_json_text(value: Any) -> None:
    compiler = Compiler(Env({}, {}))
    render = compiler.tree({"whole": "${payload.x}", "text": "<${payload.x}>", "lit": "${seq}"}, ("p",), "record")
    assert render is not None and not compiler.problems
    out = orjson.loads(orjson.dumps(render(_Ctx({"x": value}))))
    assert out["whole"] == orjson.loads(orjson.dumps(value))
    inner = value if isinstance(value, str) else "" if value is None else orjson.dumps(value).decode()
    assert out["text"] == f"<{inner}>" and out["lit"] == 7


def test_a_static_value_with_a_control_character_in_a_topic_is_refused_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(mapping('static: {m: "a\\u0007b"}\ntelemetry: {topic: "x/${static.m}", payload: 1}'))
    assert "U+0007" in str(info.value)


SOURCE = st.text(st.characters(codec="utf-8", exclude_characters="/+#"), min_size=1, max_size=150)
#: names drawn mostly from characters that matter in topics, so every run meets them often
NAME = st.one_of(TEXT, st.text(st.sampled_from(list("ab井 $/+#\x00\x1f\x7f\x85\u2028")), max_size=12))
FUZZ_ROUTE = mapping(
    'telemetry:\n  split: point\n  topic: "m/${source}/${point.name}"\n'
    '  payload: {src: "${source}", name: "${point.name}", v: "${point.value}"}'
)
FUZZ_FMT: dict[str, Any] = {}


def one_clean_level(v: str) -> bool:
    """The test's own rule (not the code's): docs/mqtt.md, Platform mappings, Topics."""
    bad = set("/+#\u2028\u2029\ufeff")
    return 0 < len(v) <= 128 and not any(ch in bad or unicodedata.category(ch) == "Cc" for ch in v)


@settings(max_examples=400, deadline=None)
@given(source=SOURCE, name=NAME, value=JSONISH)
@example(source="s", name="a#", value=1)
@example(source="s", name="a+", value=1)
@example(source="s", name="a\x85", value=1)
@example(source="s\u2028", name="a", value=1)
@example(source="井口", name="水位", value=1.5)
def test_the_formatter_never_raises_and_never_publishes_an_unsafe_topic(source: str, name: str, value: Any) -> None:
    from buffer.boundary import StoredRecord
    from tests.mapping.helpers import formatter_yaml as build

    fmt = FUZZ_FMT.get("f") or FUZZ_FMT.setdefault("f", build(FUZZ_ROUTE))
    payload = {"values": {name: {"v": value, "q": "good"}}}
    doc = {"gateway": "gw-01", "site": "mine-a", "seq": 5, "ts": "2026-11-25T02:10:00.125Z", "synced": True}
    doc |= {"source": source, "kind": "telemetry", "payload": payload, "prev": "0" * 64, "chain": "1" * 64}
    out = fmt.format_all(StoredRecord(5, source, Kind.TELEMETRY, TS, orjson.dumps(doc)))
    if one_clean_level(source) and one_clean_level(name):
        assert [m.topic for m in out] == [f"m/{source}/{name}"], "a safe record is mapped"
        assert orjson.loads(out[0].payload) == {"src": source, "name": name, "v": orjson.loads(orjson.dumps(value))}
    else:  # refused: the record itself, whole, on its default topic
        assert [m.topic for m in out] == ["headframe/mine-a/gw-01/telemetry/" + source]
        assert orjson.loads(out[0].payload) == doc


def test_two_points_under_one_key_fall_back_instead_of_losing_one(tmp_path: Path) -> None:
    fmt = formatter_yaml(
        mapping(
            'telemetry:\n  topic: "m/${source}"\n'
            '  payload: {data: {$each: points, $key: "${point.unit}", $value: "${point.value}"}}'
        )
    )
    vals = {"a": {"v": 1, "q": "good", "unit": "kW"}, "b": {"v": 2, "q": "good", "unit": "kW"}}
    recs = stored(tmp_path, [Record("m1", Kind.TELEMETRY, {"values": vals}, ts=TS)])
    assert messages(fmt, recs) == [("headframe/mine-a/gw-01/telemetry/m1", orjson.loads(recs[0].doc))], "all of the record"
    assert fmt.counters()["fallback"] == 1 and "same key" in str(fmt.counters()["last_error"])
