"""Config and drivers import without cycles, and nothing hides a cycle behind a function-level import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.agentproc import REPO

CONFIG_MODULES = sorted(f"config.{p.stem}" for p in (REPO / "config").glob("*.py") if p.stem != "__init__")


def _imports(path: Path, package: str) -> tuple[set[str], list[int]]:
    """Modules of ``package`` imported at module level, and lines of imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            top |= {n for n in names if n.split(".")[0] == package and (REPO / (n.replace(".", "/") + ".py")).exists()}
        elif isinstance(node, ast.Import):
            top |= {a.name for a in node.names if a.name.split(".")[0] == package}
    nested = [
        n.lineno
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    return top, nested


@pytest.mark.parametrize("module", CONFIG_MODULES)
def test_each_config_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    res = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr


def test_config_import_graph_is_acyclic_and_no_function_level_imports() -> None:
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO / "config").glob("*.py")):
        top, nested = _imports(path, "config")
        assert not nested, f"{path.name}: imports inside functions at lines {nested}"
        graph[f"config.{path.stem}"] = {m for m in top if m != "config.__init__"} - {"config"}
    for path in sorted((REPO / "drivers").glob("*.py")):
        _, nested = _imports(path, "drivers")
        assert not nested, f"drivers/{path.name}: imports inside functions at lines {nested}"
    done: set[str] = set()

    def visit(mod: str, stack: list[str]) -> None:
        assert mod not in stack, "import cycle: " + " -> ".join([*stack[stack.index(mod) :], mod])
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, [*stack, mod])
        done.add(mod)

    for mod in graph:
        visit(mod, [])
