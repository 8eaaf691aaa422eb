"""Broken configs must be rejected with file:line:column, the key path, found and expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_settings, load_settings_text

GOOD = """\
gateway:
  site: mine-a
  id: gw-01
buffer:
  path: /tmp/x.db
uplink:
  host: 127.0.0.1
"""

# (name, yaml, key path that must be named, line that must be named, word expected in message)
BROKEN = [
    ("unknown top-level key", GOOD + "uplnk:\n  host: x\n", "uplnk", 8, "unknown key"),
    ("typo in nested key", GOOD.replace("  host: 127.0.0.1", "  hots: 127.0.0.1"), "uplink.hots", 7, "unknown key"),
    ("missing site", GOOD.replace("  site: mine-a\n", ""), "gateway.site", 1, "missing"),
    ("bad identifier", GOOD.replace("id: gw-01", "id: gw 01/x"), "gateway.id", 3, "pattern"),
    ("port not a number", GOOD + "  port: eighty\n", "uplink.port", 8, "integer"),
    ("port out of range", GOOD + "  port: 70000\n", "uplink.port", 8, "65535"),
    ("bad duration", GOOD + "health:\n  interval: soon\n", "health.interval", 9, "duration"),
    ("bad size", GOOD.replace("  path: /tmp/x.db", "  path: /tmp/x.db\n  max_bytes: huge"), "buffer.max_bytes", 6, "size"),
    (
        "cap too small",
        GOOD.replace("  path: /tmp/x.db", "  path: /tmp/x.db\n  max_bytes: 10KB"),
        "buffer.max_bytes",
        6,
        "greater",
    ),
    (
        "ttl typo",
        GOOD.replace("  path: /tmp/x.db", "  path: /tmp/x.db\n  ttl:\n    telemetri: 1d"),
        "buffer.ttl.telemetri",
        7,
        "unknown key",
    ),
    (
        "alarm durability weakened",
        GOOD.replace("  path: /tmp/x.db", "  path: /tmp/x.db\n  durability:\n    alarm: process_crash"),
        "buffer.durability.alarm",
        7,
        "power_loss",
    ),
    ("qos 0 not allowed", GOOD + "  qos: 0\n", "uplink.qos", 8, "1"),
    ("remote broker without tls", GOOD.replace("127.0.0.1", "10.1.2.3"), "uplink", 6, "tls"),
    ("cert without key", GOOD + "  tls:\n    cert_file: /etc/hosts\n", "uplink.tls", 8, "key_file"),
    ("password file missing", GOOD + "  username: u\n  password_file: /nonexistent/pw\n", "uplink.password_file", 9, "readable"),
    ("password without username", GOOD + "  password_file: /etc/hostname\n", "uplink", 6, "username"),
    ("bad log level", GOOD + "logging:\n  level: LOUD\n", "logging.level", 9, "DEBUG"),
    ("duplicate key", GOOD + "gateway:\n  site: b\n", "", 8, "duplicate"),
    ("yaml syntax", GOOD + "uplink: [\n", "", 9, "YAML"),
    ("not a mapping", "- a\n- b\n", "", 1, "mapping"),
    ("health interval too small", GOOD + "health:\n  interval: 10ms\n", "health.interval", 9, "greater"),
]


@pytest.mark.parametrize(("name", "text", "key", "line", "word"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_key_and_line(name: str, text: str, key: str, line: int, word: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    messages = [str(p) for p in info.value.problems]
    hit = [m for m in messages if m.startswith(f"site.yaml:{line}:") and (not key or f" {key}:" in m)]
    assert hit, f"{name}: expected a problem at line {line} naming {key!r}, got {messages}"
    assert word.lower() in hit[0].lower(), hit[0]


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD + "  port: x\nhealth:\n  interval: never\nlogging:\n  lvl: INFO\n"
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "c.yaml")
    keys = {p.key for p in info.value.problems}
    assert {"uplink.port", "health.interval", "logging.lvl"} <= keys


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(GOOD + "  password: hunter2\n", "c.yaml")
    assert "hunter2" not in str(info.value)
    assert "uplink.password" in str(info.value)


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(GOOD.replace("/tmp/x.db", "data/buf.db"))
    settings = load_settings(tmp_path / "c.yaml")
    assert settings.buffer.path == tmp_path.resolve() / "data" / "buf.db"


def test_minimal_example_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config" / "examples" / "minimal.yaml")
    assert settings.gateway.id == "gw-01"
    assert settings.buffer.durability.alarm == "power_loss"


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD + "  prot: 1\n")
    run = [sys.executable, "-m", "agent.cli", "check"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert fail.returncode == 1
    assert f"{bad}:8:3: uplink.prot: found unknown key 'prot'" in fail.stderr
    missing = subprocess.run([*run, str(tmp_path / "nope.yaml")], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert missing.returncode == 1 and "no readable file" in missing.stderr


def test_the_fast_parse_gives_the_same_settings_as_the_located_parse() -> None:
    """A valid config takes the C loader; the round-trip loader must read it the same way
    (YAML 1.2: ``off`` stays a string, ``0o17`` is octal, anchors merge)."""
    from config.loader import _load_located
    from config.yamlio import parse_plain, parse_yaml, plain

    examples = Path(__file__).resolve().parents[2] / "config" / "examples"
    for path in sorted(examples.glob("*.yaml")):
        text = path.read_text()
        assert parse_plain(text) == plain(parse_yaml(text, str(path))), path
        assert load_settings_text(text, str(path)) == _load_located(text, str(path), None), path
    tricky = "a: off\nb: 0o17\nc: 1_000\nd: 2024-01-01\nbase: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n"
    assert parse_plain(tricky) == plain(parse_yaml(tricky, "t"))
    assert parse_plain("a: 1\na: 2\n") is None, "a duplicate key must take the located path"
    assert parse_plain("a: !!str 5\n") is None, "tags take the located path"


def test_a_problem_in_a_big_valid_looking_config_is_still_located() -> None:
    """The fast path finds the problem, the located path reports it at its line."""
    points = "\n".join(f"      - {{name: r{j}, address: {j}}}" for j in range(50))
    text = (
        "gateway: {site: s, id: g}\ndevices:\n  - id: m1\n    protocol: modbus_tcp\n    host: 127.0.0.1\n"
        f"    points:\n{points}\n      - {{name: bad, address: -1}}\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_settings_text(text, "site.yaml")
    (problem,) = exc.value.problems
    assert (problem.file, problem.line) == ("site.yaml", 57), problem
