"""Load one YAML file into typed Settings, reporting every problem with file:line:column."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from config.compact import parse_compact
from config.errors import ConfigError, ConfigProblem
from config.messages import problem_text
from config.profiles import known_profiles
from config.schema import Settings
from config.yamlio import locate, parse_yaml, plain, problem_from_error, validate_tree

__all__ = ["load_or_report", "load_settings", "load_settings_text", "locate", "parse_yaml", "validate_tree"]


def load_settings_text(text: str, file: str = "<config>", base_dir: Path | None = None) -> Settings:
    """Validate config text; raises ConfigError listing every problem found.

    A valid config is parsed once by the fast loader (``parse_plain``); anything the fast path
    does not accept is parsed again keeping line numbers, so every problem is still reported
    at its file:line:column, exactly as before.
    """
    data = parse_compact(text)  # parse_plain, laid out afresh: the parser's garbage goes back (config/compact.py)
    if isinstance(data, dict):
        settings = _valid_or_none(data, base_dir)
        if settings is not None:
            return settings
    return _load_located(text, file, base_dir)


def _valid_or_none(data: dict[str, Any], base_dir: Path | None) -> Settings | None:
    """The settings when ``data`` has no problem at all (schema, cross-checks, files), else None."""
    try:
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError:
        return None
    if any(True for _ in settings.cross_problems(known_profiles())) or _file_problems(settings, None, "<config>"):
        return None
    return settings


def _load_located(text: str, file: str, base_dir: Path | None) -> Settings:
    """The round-trip parse: slower, keeps line numbers for every problem it reports."""
    tree = parse_yaml(text, file)
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(
            [
                ConfigProblem(
                    file, 1, 1, "", "a document that is not a mapping", "keys such as 'gateway:' and 'uplink:' at the top level"
                )
            ]
        )
    try:
        settings = Settings.model_validate(plain(tree), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError([problem_from_error(file, tree, e) for e in exc.errors()]) from None
    problems = []
    for loc, found, expected in settings.cross_problems(known_profiles()):
        line, col, key = locate(tree, loc)
        problems.append(ConfigProblem(file, line, col, key, found, expected))
    problems.extend(_file_problems(settings, tree, file))
    if problems:
        raise ConfigError(problems)
    return settings


def _file_problems(settings: Settings, tree: Any, file: str) -> list[ConfigProblem]:
    """Referenced secret and certificate files must exist and be readable now, not at 3 a.m.

    Not ``gateway.chain_key_file``: an unusable key must not keep the agent from starting (it
    runs on an emergency key and raises an alarm); ``headframe check`` warns about it instead."""
    refs: list[tuple[tuple[str | int, ...], Path | None]] = [
        (("uplink", "password_file"), settings.uplink.password_file),
    ]
    if settings.uplink.tls:
        tls = settings.uplink.tls
        refs += [
            (("uplink", "tls", "ca_file"), tls.ca_file),
            (("uplink", "tls", "cert_file"), tls.cert_file),
            (("uplink", "tls", "key_file"), tls.key_file),
        ]
    problems = []
    for loc, path in refs:
        if path is None:
            continue
        try:
            path.read_bytes()
        except OSError as exc:
            line, col, key = locate(tree, loc)
            problems.append(ConfigProblem(file, line, col, key, f"{path} ({exc.strerror or exc})", "a readable file"))
    return problems


def load_settings(path: str | Path) -> Settings:
    """Load and validate the config file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    1,
                    1,
                    "",
                    f"no readable file ({exc.strerror or exc})",
                    "a YAML config file (see config/examples/minimal.yaml)",
                )
            ]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(str(path), 1, 1, "", f"bytes that are not UTF-8 ({exc.reason})", "a UTF-8 text file")]
        ) from None
    return load_settings_text(text, str(path), base_dir=path.parent.resolve())


def load_or_report(path: str | Path) -> Settings | None:
    """For CLI commands: the settings, or None after printing every problem to stderr."""
    try:
        return load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:  # in the technician's language (config/lang.py), key paths as written
            print(problem_text(problem), file=sys.stderr)
        return None
