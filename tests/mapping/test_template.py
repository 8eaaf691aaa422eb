"""The template language: typed substitution, interpolation, iteration, load-time errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from buffer.record import Kind, Record
from config import ConfigError, load_settings_text
from tests.mapping.helpers import TS, formatter_yaml, messages, stored, telemetry

HEAD = "gateway: {site: mine-a, id: gw-01}\nuplink:\n  mapping:\n"


def mapping(body: str) -> str:
    return HEAD + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


def test_whole_leaf_keeps_its_type_and_interpolation_makes_text(tmp_path: Path) -> None:
    rec = Record("pump-1", Kind.EVENT, {"event": "x", "n": 3, "f": 2.5, "ok": True, "none": None, "obj": {"a": [1]}}, ts=TS)
    fmt = formatter_yaml(
        mapping(
            """
event:
  topic: "t/${source}"
  payload:
    n: "${payload.n}"
    f: "${payload.f}"
    ok: "${payload.ok}"
    none: "${payload.none}"
    missing: "${payload.nope.deeper}"
    obj: "${payload.obj}"
    text: "n=${payload.n} ok=${payload.ok} none=[${payload.none}] obj=${payload.obj}"
    literal: "$${not.a.var} costs $5 {braces}"
    const: [1, 2.5, true, null, "plain"]
    "${source}_key": 1
    $$dollar: 2
"""
        )
    )
    [(topic, body)] = messages(fmt, stored(tmp_path, [rec]))
    assert topic == "t/pump-1"
    assert body == {
        "n": 3,
        "f": 2.5,
        "ok": True,
        "none": None,
        "missing": None,
        "obj": {"a": [1]},
        "text": 'n=3 ok=true none=[] obj={"a":[1]}',
        "literal": "${not.a.var} costs $5 {braces}",
        "const": [1, 2.5, True, None, "plain"],
        "pump-1_key": 1,
        "$dollar": 2,
    }


def test_times_in_every_documented_format(tmp_path: Path) -> None:
    fmt = formatter_yaml(
        mapping(
            """
timezone: Asia/Shanghai
telemetry:
  topic: "t/${date_local}"
  payload: ["${ts}", "${ts_ms}", "${ts_s}", "${ts_local}", "${ts_local_ms}", "${ts_local_iso}", "${ts_compact}", "${synced}"]
"""
        )
    )
    [(topic, body)] = messages(fmt, stored(tmp_path, [telemetry()]))
    assert topic == "t/2026-11-25"
    assert body == [
        "2026-11-25T02:10:00.125Z",
        1795572600125,
        1795572600,
        "2026-11-25 10:10:00",
        "2026-11-25 10:10:00.125",
        "2026-11-25T10:10:00.125+08:00",
        "20261125101000",
        True,
    ]


def test_each_point_as_array_as_object_and_split_per_point(tmp_path: Path) -> None:
    recs = stored(tmp_path, [telemetry()])
    arr = formatter_yaml(
        mapping(
            'telemetry:\n  topic: a\n  payload: {$each: points, $item: ["${point.index}", "${point.name}", "${point.quality}"]}'
        )
    )
    assert messages(arr, recs) == [("a", [[0, "p_total", "good"], [1, "u_l1", "stale"]])]
    obj = formatter_yaml(
        mapping('telemetry:\n  topic: a\n  payload: {$each: points, $key: "${point.name}", $value: "${point.value}"}')
    )
    assert messages(obj, recs) == [("a", {"p_total": 45.5, "u_l1": 231})]
    split = formatter_yaml(
        mapping(
            'telemetry:\n  split: point\n  topic: "m/${source}/${point.name}"\n'
            '  payload: {v: "${point.value}", u: "${point.unit}", s: "${seq}"}'
        )
    )
    assert messages(split, recs) == [
        ("m/meter-main/p_total", {"v": 45.5, "u": "kW", "s": 1}),
        ("m/meter-main/u_l1", {"v": 231, "u": "V", "s": 1}),
    ]
    listed = formatter_yaml(mapping('telemetry:\n  topic: a\n  payload: "${points}"'))
    assert messages(listed, recs)[0][1][0] == {"name": "p_total", "value": 45.5, "quality": "good", "unit": "kW"}


def test_kind_selection_default_and_plain_json_fallback(tmp_path: Path) -> None:
    recs = stored(
        tmp_path,
        [telemetry(), Record("agent", Kind.HEALTH, {"schema": "h"}, ts=TS), Record("x", Kind.EVENT, {"event": "e"}, ts=TS)],
    )
    only_tel = formatter_yaml(mapping("telemetry: {topic: t, payload: 1}"))
    out = messages(only_tel, recs)
    assert out[0] == ("t", 1)
    assert out[1] == ("headframe/mine-a/gw-01/health/agent", orjson.loads(recs[1].doc))
    assert out[2] == ("headframe/mine-a/gw-01/event/x", orjson.loads(recs[2].doc))
    with_default = formatter_yaml(mapping('telemetry: {topic: t, payload: 1}\ndefault: {topic: "d/${kind}", payload: "${kind}"}'))
    assert [m[0] for m in messages(with_default, recs)] == ["t", "d/health", "d/event"]


def test_tables_with_star_default_and_a_miss_falls_back_to_plain_json(tmp_path: Path) -> None:
    recs = stored(tmp_path, [telemetry("meter-main"), telemetry("meter-2")])
    fmt = formatter_yaml(
        mapping(
            'tables: {code: {meter-main: M1}}\ntelemetry: {topic: "c/${tables.code[source]}", payload: "${tables.code[source]}"}'
        )
    )
    out = messages(fmt, recs)
    assert out[0] == ("c/M1", "M1")
    assert out[1] == ("headframe/mine-a/gw-01/telemetry/meter-2", orjson.loads(recs[1].doc)), "not lost: plain JSON"
    assert fmt.counters()["fallback"] == 1 and "no entry for source='meter-2'" in str(fmt.counters()["last_error"])
    star = formatter_yaml(
        mapping('tables: {code: {meter-main: M1, "*": GW}}\ntelemetry: {topic: "c/${tables.code[source]}", payload: 0}')
    )
    assert [m[0] for m in messages(star, recs)] == ["c/M1", "c/GW"]


# --------------------------------------------------------------------- load-time errors
BAD = [
    ('telemetry: {topic: t, payload: {a: "${seqq}"}}', "uplink.mapping.telemetry.payload.a", "did you mean ${seq}"),
    ('telemetry: {topic: t, payload: {a: ["${ts_local"]}}', "uplink.mapping.telemetry.payload.a[0]", "closed by '}'"),
    ('telemetry: {topic: t, payload: {a: "${}"}}', "uplink.mapping.telemetry.payload.a", "${name}"),
    ('telemetry: {topic: t, payload: {a: "${ seq }"}}', "uplink.mapping.telemetry.payload.a", "no spaces"),
    ('telemetry: {topic: t, payload: {a: "${a${seq}}"}}', "uplink.mapping.telemetry.payload.a", "closed by '}'"),
    ('telemetry: {topic: t, payload: {a: "${point.value}"}}', "uplink.mapping.telemetry.payload.a", "$each: points"),
    ('telemetry: {topic: "x/+/y", payload: 1}', "uplink.mapping.telemetry.topic", "without wildcards"),
    ('telemetry: {topic: "x/${source}/#", payload: 1}', "uplink.mapping.telemetry.topic", "without wildcards"),
    ('telemetry: {topic: "$SYS/x", payload: 1}', "uplink.mapping.telemetry.topic", "reserved for the broker"),
    ('static: {r: "$SYS"}\ntelemetry: {topic: "${static.r}/x", payload: 1}', "uplink.mapping.telemetry.topic", "reserved for"),
    ('telemetry: {topic: "", payload: 1}', "uplink.mapping.telemetry.topic", "without wildcards"),
    ('telemetry: {topic: "x/${payload}", payload: 1}', "uplink.mapping.telemetry.topic", "scalar variables in topics"),
    (
        'static: {m: "a/b"}\ntelemetry: {topic: "x/${static.m}", payload: 1}',
        "uplink.mapping.telemetry.topic",
        "safe in one topic level",
    ),
    ('tables: {c: {a: "x#"}}\nalarm: {topic: "x/${tables.c[source]}", payload: 1}', "uplink.mapping.alarm.topic", "safe in one"),
    ('telemetry: {topic: t, payload: "${static.nope}"}', "uplink.mapping.telemetry.payload", "mapping.static"),
    ('telemetry: {topic: t, payload: "${tables.nope[source]}"}', "uplink.mapping.telemetry.payload", "mapping.tables"),
    ('tables: {c: {a: 1}}\ntelemetry: {topic: t, payload: "${tables.c[payload]}"}', "uplink.mapping.telemetry.payload", "scalar"),
    ("telemetry: {topic: t, payload: {n: .nan}}", "uplink.mapping.telemetry.payload.n", "finite number"),
    ("telemetry: {topic: t, payload: {n: 99999999999999999999}}", "uplink.mapping.telemetry.payload.n", "64 bits"),
    ("telemetry: {topic: t, payload: {$each: values, $item: 1}}", "uplink.mapping.telemetry.payload.$each", "['points']"),
    (
        "telemetry: {topic: t, payload: {$each: points, $item: 1, extra: 2}}",
        "uplink.mapping.telemetry.payload.extra",
        "only $each",
    ),
    ("telemetry: {topic: t, payload: {$each: points, $key: a}}", "uplink.mapping.telemetry.payload", "$key and $value"),
    ("telemetry: {topic: t, payload: {$item: 1}}", "uplink.mapping.telemetry.payload.$item", "together with $each"),
    (
        "telemetry: {topic: t, payload: {$each: points, $item: {$each: points, $item: 1}}}",
        "uplink.mapping.telemetry.payload.$item.$each",
        "not nested",
    ),
    (
        "telemetry: {topic: t, split: point, payload: {$each: points, $item: 1}}",
        "uplink.mapping.telemetry.payload.$each",
        "not nested",
    ),
    ("timezone: Mars/Olympus\ntelemetry: {topic: t, payload: 1}", "uplink.mapping.timezone", "IANA"),
    ("telemetry: {topic: t, payload: {d: 2024-01-01}}", "uplink.mapping.telemetry.payload.d", "JSON values only"),
    ("telemetry: {topic: t}", "uplink.mapping.telemetry.payload", "missing"),
    ("telemetry: {topic: t, payload: 1, spilt: point}", "uplink.mapping.telemetry.spilt", "unknown key"),
]


@pytest.mark.parametrize(("body", "key", "words"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_bad_template_is_refused_at_load_naming_its_key(body: str, key: str, words: str) -> None:
    text = mapping(body)
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    hit = [m for m in msgs if f" {key}: " in m]
    assert hit, msgs
    assert words in hit[0], hit[0]
    line = int(hit[0].split(":")[1])
    assert line >= 4, "located inside the mapping, not at the top of the file"


def test_every_problem_is_reported_not_just_the_first() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(
            mapping('telemetry: {topic: "a/#", payload: {x: "${nope}", y: "${nope2}"}}\nalarm: {topic: t, payload: "${x}"}')
        )
    keys = sorted(p.key for p in info.value.problems)
    assert keys == [
        "uplink.mapping.alarm.payload",
        "uplink.mapping.telemetry.payload.x",
        "uplink.mapping.telemetry.payload.y",
        "uplink.mapping.telemetry.topic",
    ]


def test_attachments_travel_base64_with_their_metadata(tmp_path: Path) -> None:
    from tests.mapping.helpers import alarm

    fmt = formatter_yaml(
        mapping(
            'alarm: {topic: a, payload: {files: "${attachments}", n: "${alarm.type}"}}\n'
            'event: {topic: e, payload: "${attachments}"}'
        )
    )
    out = messages(fmt, stored(tmp_path, [alarm(), Record("x", Kind.EVENT, {"event": "e"}, ts=TS)]))
    [meta] = out[0][1]["files"]
    assert meta["name"] == "s.jpg" and meta["data"] == "/9hqcGc=" and len(meta["sha256"]) == 64
    assert out[0][1]["n"] == "occupancy_limit" and out[1] == ("e", [])


def test_every_documented_variable_is_computed_and_in_the_docs() -> None:
    from agent.uplink.mapping.context import _COMPUTE, Point
    from config.template_vars import VARIABLES

    text = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()
    section = text.split("## Platform mappings", 1)[1].split("\n## ", 1)[0]
    doc = "\n".join(line for line in section.splitlines() if line.startswith("| `"))  # the variable table
    for name, var in VARIABLES.items():
        if var.scope == "point":
            assert name.removeprefix("point.") in Point.__slots__, name
        else:
            assert name in _COMPUTE, name
        assert f"`{name}`" in doc, f"{name} is not in the variable table of docs/mqtt.md"
