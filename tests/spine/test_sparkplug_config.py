"""``uplink.format: sparkplug`` is validated at load: Sparkplug topic ids, the section without the format."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings_text

GOOD = """\
gateway:
  site: mine-a
  id: gw-01
uplink:
  host: 127.0.0.1
  format: sparkplug
"""

BROKEN = [
    ("slash in group_id", GOOD + "  sparkplug:\n    group_id: mine/a\n", "uplink.sparkplug.group_id", 8, "topic id"),
    ("plus in edge_node_id", GOOD + "  sparkplug:\n    edge_node_id: gw+1\n", "uplink.sparkplug.edge_node_id", 8, "topic id"),
    ("hash in group_id", GOOD + "  sparkplug:\n    group_id: 'a#'\n", "uplink.sparkplug.group_id", 8, "topic id"),
    ("space in group_id", GOOD + "  sparkplug:\n    group_id: mine a\n", "uplink.sparkplug.group_id", 8, "topic id"),
    ("empty edge_node_id", GOOD + "  sparkplug:\n    edge_node_id: ''\n", "uplink.sparkplug.edge_node_id", 8, "topic id"),
    (
        "slash in primary_host_id",
        GOOD + "  sparkplug:\n    primary_host_id: a/b\n",
        "uplink.sparkplug.primary_host_id",
        8,
        "topic id",
    ),
    ("unknown key", GOOD + "  sparkplug:\n    group: a\n", "uplink.sparkplug.group", 8, "unknown"),
    ("unknown format", GOOD.replace("sparkplug", "sparkplug_b"), "uplink.format", 6, "json"),
    (
        "section without the format",
        GOOD.replace("  format: sparkplug\n", "") + "  sparkplug:\n    group_id: a\n",
        "uplink",
        4,
        "format: sparkplug",
    ),
    (
        "a platform mapping with sparkplug",
        GOOD + "  mapping:\n    telemetry:\n      topic: 'p/${gateway}'\n      payload: {v: '${seq}'}\n",
        "uplink",
        4,
        "mapping",
    ),
]


@pytest.mark.parametrize(("name", "text", "key", "line", "word"), BROKEN, ids=[b[0] for b in BROKEN])
def test_bad_sparkplug_config_names_key_and_line(name: str, text: str, key: str, line: int, word: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    messages = [str(p) for p in info.value.problems]
    hit = [m for m in messages if m.startswith(f"site.yaml:{line}:") and f" {key}:" in m]
    assert hit, f"{name}: expected a problem at line {line} naming {key!r}, got {messages}"
    assert word.lower() in hit[0].lower(), hit[0]


def test_ids_default_to_the_gateway_and_json_stays_the_default() -> None:
    assert load_settings_text(GOOD.replace("  format: sparkplug\n", "")).uplink.format == "json"
    s = load_settings_text(GOOD + "  sparkplug:\n    group_id: Mine.A-7\n    edge_node_id: gw_01\n")
    assert s.uplink.sparkplug is not None
    assert (s.uplink.sparkplug.group_id, s.uplink.sparkplug.edge_node_id) == ("Mine.A-7", "gw_01")
    assert load_settings_text(GOOD).uplink.sparkplug is None  # ids: gateway.site / gateway.id
