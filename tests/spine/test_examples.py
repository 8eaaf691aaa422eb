"""Every example configuration passes ``headframe check`` and shows what its comments claim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))


def test_every_example_the_docs_name_exists() -> None:
    named = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= set(re.findall(r"config/examples/([\w.-]+\.yaml)", doc.read_text()))
    assert named, "the README names the examples"
    missing = sorted(n for n in named if not (ROOT / "config" / "examples" / n).is_file())
    assert not missing, f"docs name examples that do not exist: {missing}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_passes_headframe_check(path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "agent.cli", "check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert f"{path}: OK" in out.stdout


def test_examples_cover_each_capability() -> None:
    by_name = {p.stem: load_settings(p) for p in EXAMPLES}
    assert {"minimal", "drivers", "vision", "seals", "rules", "opcua"} <= set(by_name)
    assert {d.protocol for d in by_name["drivers"].devices} == {"modbus_tcp", "modbus_rtu", "dlt645"}
    assert {d.protocol for d in by_name["s7"].devices} == {"s7"}
    opcua = by_name["opcua"].devices
    assert {d.protocol for d in opcua} == {"opcua"} and {getattr(d, "mode", None) for d in opcua} == {"subscribe", "poll"}
    vision = by_name["vision"]
    shaft_lines = [ln for cam in vision.cameras for ln in cam.lines if ln.shaft == "main-shaft"]
    assert len({cam.id for cam in vision.cameras if any(ln.shaft for ln in cam.lines)}) == 2 and shaft_lines
    assert any(z.limit == 10 for cam in vision.cameras for z in cam.zones)
    seals = by_name["seals"]
    assert all(c.seal is not None for c in seals.cameras)
    assert seals.rules.site.sections[0].state == "sealed"
    rules = by_name["rules"]
    assert rules.rules.headcount.external and rules.rules.site.rectification and rules.rules.site.belt_scales
    assert rules.rules.site.rectification[0].max_per_place == 9
