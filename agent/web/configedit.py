"""Edit the agent's config file from the page: validate with the loader, show the diff, write atomically.

The same loader as ``headframe check`` decides; nothing is written unless the whole file is
valid. Two technicians saving at once: each save names the file version it started from (its
SHA-256); a save against a version that is no longer on disk is refused, so nobody's change is
silently overwritten. The write keeps the file's mode and is atomic (old or new file after a
power cut, never half); the reload that follows records the ``config_applied`` audit record.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.atomicfile import atomic_write
from config import ConfigError, ConfigProblem, load_settings_text
from config.schema import RESTART_ONLY_SECTIONS

#: a config file larger than this is not one a technician edits in a browser
MAX_CONFIG_BYTES = 512 * 1024


@dataclass
class CheckResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    diff: str = ""
    #: sections changed that a reload does not apply (they take effect at the next start)
    restart_needed: list[str] = field(default_factory=list)
    #: the loader's problems themselves, for a page that shows them in the technician's language
    details: list[ConfigProblem] = field(default_factory=list)


class ConflictError(Exception):
    """The file changed on disk since the editor loaded it."""


def file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ConfigEditor:
    """Reads, checks and saves one config file; saves are serialised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    def current(self) -> tuple[str, str]:
        data = self.path.read_bytes()
        return data.decode("utf-8", errors="replace"), file_hash(data)

    def check(self, text: str) -> CheckResult:
        if len(text.encode()) > MAX_CONFIG_BYTES:
            return CheckResult(False, [f"the file would be larger than {MAX_CONFIG_BYTES // 1024} KiB"])
        try:
            new = load_settings_text(text, file=str(self.path), base_dir=self.path.parent)
        except ConfigError as exc:
            return CheckResult(False, [str(p) for p in exc.problems], details=exc.problems)
        old, _ = self.current()
        try:
            running = load_settings_text(old, file=str(self.path), base_dir=self.path.parent)
            restart = [k for k in RESTART_ONLY_SECTIONS if getattr(new, k) != getattr(running, k)]
        except ConfigError:  # the file on disk is invalid (edited by hand): everything is new
            restart = list(RESTART_ONLY_SECTIONS)
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{self.path.name} (running)",
                f"{self.path.name} (new)",
            )
        )
        return CheckResult(True, [], diff, restart)

    async def save(self, text: str, base_hash: str) -> CheckResult:
        """Validate and write; raises ``ConflictError`` when the file is not the version edited."""
        async with self._lock:
            result = await asyncio.to_thread(self.check, text)
            if not result.ok:
                return result
            _, now_hash = self.current()
            if now_hash != base_hash:
                raise ConflictError(f"{self.path} was changed by someone else since you opened it ({now_hash[:19]}…)")
            if not result.diff:
                return result
            mode = os.stat(self.path).st_mode & 0o777
            await asyncio.to_thread(atomic_write, self.path, text.encode("utf-8"), mode)
            return result
