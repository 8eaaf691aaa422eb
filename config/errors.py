"""Config problems reported as ``file:line:column: key.path: found X; expected Y``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file, located for a technician with an editor."""

    file: str
    line: int
    column: int
    key: str
    found: str
    expected: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.key or '(top level)'}: found {self.found}; expected {self.expected}"


class ConfigError(Exception):
    """A config file that must not be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
