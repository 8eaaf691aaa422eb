"""Load one YAML file into typed Settings, reporting every problem with file:line:column."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from config.errors import ConfigError, ConfigProblem
from config.schema import Settings

_SECRET_KEY = re.compile(r"(password|secret|token|passphrase)(?!_file)", re.IGNORECASE)


def _plain(node: Any) -> Any:
    """Round-trip YAML nodes → plain dicts/lists so validation sees ordinary Python values."""
    if isinstance(node, CommentedMap | dict):
        return {str(k) if not isinstance(k, str | int) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq | list):
        return [_plain(v) for v in node]
    return node


def locate(tree: Any, loc: tuple[str | int, ...]) -> tuple[int, int, str]:
    """Find the 1-based line/column of ``loc`` in the parsed tree and the dotted key path.

    Segments that are not in the data (pydantic adds union tags and validator names) are
    skipped; a missing key points at its parent so the technician knows where to add it.
    """
    line, col = 1, 1
    node = tree
    keys: list[str] = []
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            kl, kc = node.lc.key(part)
            line, col = kl + 1, kc + 1
            node = node[part]
            keys.append(str(part))
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            il, ic = node.lc.item(part)
            line, col = il + 1, ic + 1
            node = node[part]
            keys.append(f"[{part}]")
        elif isinstance(part, str) and not isinstance(node, CommentedMap | CommentedSeq):
            break
        else:
            if isinstance(part, str) and isinstance(node, CommentedMap) and part.replace("_", "").isalnum():
                keys.append(str(part))
    path = ".".join(keys).replace(".[", "[")
    return line, col, path


def _describe(value: Any, key: str) -> str:
    if _SECRET_KEY.search(key):
        return "a value (hidden: secrets belong in a *_file)"
    text = repr(_plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _problem_from_error(file: str, tree: Any, err: dict[str, Any]) -> ConfigProblem:
    loc = tuple(err["loc"])
    line, col, key = locate(tree, loc)
    kind = err["type"]
    if kind == "missing":
        found = "nothing (the key is missing)"
        expected = f"'{loc[-1]}' to be set here" if loc else "a value"
    elif kind == "extra_forbidden":
        found = f"unknown key '{loc[-1]}'"
        expected = "only documented keys (check the spelling; see config/examples/)"
    else:
        found = _describe(err.get("input"), key)
        expected = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            expected = expected.removeprefix(prefix)
    return ConfigProblem(file, line, col, key, found, expected)


def validate_tree(model: Any, tree: Any, file: str, label: Any = None) -> Any:
    """Validate a parsed YAML tree into ``model``; every error located as file:line:column.

    ``label(loc, key)`` may rewrite the key shown (e.g. "step 3 (proxy): mode").
    """
    try:
        return model.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            problem = _problem_from_error(file, tree, err)
            if label is not None:
                problem = ConfigProblem(problem.file, problem.line, problem.column,
                                        label(tuple(err["loc"]), problem.key), problem.found, problem.expected)
            problems.append(problem)
        raise ConfigError(problems) from None


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML keeping line numbers; syntax errors and duplicate keys become problems."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = (exc.problem or "invalid YAML").strip()
        raise ConfigError(
            [ConfigProblem(file, line, col, "", f"YAML that does not parse ({what})", "valid YAML")]
        ) from exc


def load_settings_text(text: str, file: str = "<config>", base_dir: Path | None = None) -> Settings:
    """Validate config text; raises ConfigError listing every problem found."""
    tree = parse_yaml(text, file)
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigProblem(file, 1, 1, "", "a document that is not a mapping",
                                         "keys such as 'gateway:' and 'uplink:' at the top level")])
    try:
        settings = Settings.model_validate(_plain(tree), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError([_problem_from_error(file, tree, e) for e in exc.errors()]) from None
    problems = []
    for loc, found, expected in settings.cross_problems():
        line, col, key = locate(tree, loc)
        problems.append(ConfigProblem(file, line, col, key, found, expected))
    problems.extend(_file_problems(settings, tree, file))
    if problems:
        raise ConfigError(problems)
    return settings


def _file_problems(settings: Settings, tree: Any, file: str) -> list[ConfigProblem]:
    """Referenced secret and certificate files must exist and be readable now, not at 3 a.m."""
    refs: list[tuple[tuple[str | int, ...], Path | None]] = [
        (("uplink", "password_file"), settings.uplink.password_file),
        (("gateway", "chain_key_file"), settings.gateway.chain_key_file),
    ]
    if settings.uplink.tls:
        tls = settings.uplink.tls
        refs += [(("uplink", "tls", "ca_file"), tls.ca_file), (("uplink", "tls", "cert_file"), tls.cert_file),
                 (("uplink", "tls", "key_file"), tls.key_file)]
    problems = []
    for loc, path in refs:
        if path is None:
            continue
        try:
            content = path.read_bytes()
        except OSError as exc:
            line, col, key = locate(tree, loc)
            problems.append(ConfigProblem(file, line, col, key, f"{path} ({exc.strerror or exc})",
                                          "a readable file"))
            continue
        if loc == ("gateway", "chain_key_file") and not content.strip():
            line, col, key = locate(tree, loc)
            problems.append(ConfigProblem(file, line, col, key, f"{path} (empty: the chain would be unkeyed)",
                                          "a file holding the gateway's secret (openssl rand -hex 32)"))
    return problems


def load_settings(path: str | Path) -> Settings:
    """Load and validate the config file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), 1, 1, "", f"no readable file ({exc.strerror or exc})",
                                         "a YAML config file (see config/examples/minimal.yaml)")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(str(path), 1, 1, "", f"bytes that are not UTF-8 ({exc.reason})",
                                         "a UTF-8 text file")]) from None
    return load_settings_text(text, str(path), base_dir=path.parent.resolve())


def load_or_report(path: str | Path) -> Settings | None:
    """For CLI commands: the settings, or None after printing every problem to stderr."""
    import sys

    try:
        return load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
