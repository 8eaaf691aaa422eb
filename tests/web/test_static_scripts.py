"""The page's scripts are classic scripts sharing one global scope: a top-level name declared in two
of them silently replaces the other's (a camera view's ``select`` once replaced the form builder's,
and the device form lost its profile list). Each top-level name must be declared once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "agent" / "web" / "static"
TOP_LEVEL = re.compile(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.M)


def test_no_top_level_name_is_declared_by_two_scripts() -> None:
    names: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 3
    for js in scripts:
        for name in TOP_LEVEL.findall(js.read_text(encoding="utf-8")):
            names[name] += 1
            where.setdefault(name, []).append(js.name)
    twice = {n: where[n] for n, c in names.items() if c > 1}
    assert twice == {}, f"declared more than once in the page's global scope: {twice}"
