"""The config tree is rebuilt compactly before validation only when that changes nothing."""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from config.compact import lossless_json, parse_compact
from config.yamlio import parse_plain

REPO = Path(__file__).resolve().parents[2]


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``True == 1`` and ``1 == 1.0`` are not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def test_rebuilt_tree_has_the_same_values_and_types() -> None:
    text = "a: 1\nb: 1.0\nc: true\nd: null\ne: [x, 2, {f: -0.0}]\ng: '5'\nh: 18446744073709551615\n"
    assert same(parse_compact(text), parse_plain(text))
    assert type(parse_compact(text)["b"]) is float and parse_compact(text)["c"] is True


def test_what_json_cannot_carry_keeps_the_parsed_tree() -> None:
    for text in ("a: .nan\n", "a: .inf\n", "a: 2026-01-01\n", "1: x\n", "a: 123456789012345678901234567890\n"):
        parsed = parse_plain(text)
        assert lossless_json(parsed) is None, text
        assert same(parse_compact(text), parsed), text
    assert isinstance(parse_compact("a: 2026-01-01\n")["a"], datetime.date)


PROBE = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    import agent.daemon, drivers.runtime
    from agent.memory import release_freed_memory
    from config import load_settings

    def rss():
        return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024

    release_freed_memory()
    before = rss()
    settings = load_settings(Path(sys.argv[1]))
    release_freed_memory()
    print(json.dumps({"grew": rss() - before, "points": sum(len(d.points) for d in settings.devices)}))
    """
)


def test_a_big_config_leaves_little_behind(tmp_path: Path) -> None:
    """40 devices x 100 points as YAML: loading grew the RSS by ~16 MB when the settings kept the
    parsed tree's strings (half-empty allocator blocks held by them), ~7.7 MB rebuilt compactly."""
    lines = ["gateway: {site: s, id: g}", f"buffer: {{path: {tmp_path / 'b.db'}}}", "devices:"]
    for d in range(40):
        lines += [f"  - id: dev{d}", "    protocol: modbus_tcp", "    host: 127.0.0.1", "    port: 5020", "    points:"]
        lines += [f"      - {{name: r{j}, address: {j}, type: uint16, unit: kWh}}" for j in range(100)]
    cfg = tmp_path / "big.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-c", PROBE, str(cfg)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["points"] == 4000
    assert result["grew"] < 11.0, result
