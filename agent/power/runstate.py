"""The run-state file: what this run was doing, on disk, so the next start can say how it ended.

Written atomically (temp file, fsync, rename, fsync of the directory) at start, on every
power-state change, when the watchdog pings are withheld, at clean stop, and by
``headframe mark-stopped`` (systemd's ExecStopPost). A power cut therefore leaves either the
old or the new content, never a torn file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from agent.atomicfile import atomic_write

log = logging.getLogger("headframe.power")

RUN_STATE_NAME = "headframe-run.json"
BOOT_COUNT_NAME = "headframe-boots.json"


def atomic_write_json(path: Path, doc: dict[str, Any]) -> None:
    """Replace ``path`` with ``doc`` so that a power cut leaves the old or the new file, never half."""
    atomic_write(path, json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None when it is missing or unreadable (logged: evidence is weaker then)."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("power: %s is unreadable (%s); treating it as absent", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


class RunState:
    """This run's state file; every update rewrites it whole (it is a few hundred bytes)."""

    def __init__(self, state_dir: Path, doc: dict[str, Any]) -> None:
        self.path = Path(state_dir) / RUN_STATE_NAME
        self.doc = dict(doc)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, state_dir: Path) -> RunState:
        """The handle on the state file as it is now (written by ``build_start_evidence``)."""
        return cls(state_dir, read_json(Path(state_dir) / RUN_STATE_NAME) or {})

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` and write; a failure is logged, never raised (evidence must not stop the agent)."""
        with self._lock:
            self.doc.update(fields)
            try:
                atomic_write_json(self.path, self.doc)
            except OSError as exc:
                log.error("power: could not write the run state %s: %s", self.path, exc)

    def set_power(self, state: str, since: str, detail: dict[str, Any] | None = None) -> None:
        """Record mains/battery state; the next start reads it to tell mains failure from a crash."""
        self.update(power={"state": state, "since": since, **(detail or {})})

    def watchdog_withheld(self, why: str | None, at: str) -> None:
        """Pings to systemd stopped (``why``) or resumed (None): a kill on the same boot is then a watchdog kill."""
        current = self.doc.get("watchdog_withheld")
        if why is None and current:
            self.update(watchdog_withheld=None)
        elif why is not None and not current:
            self.update(watchdog_withheld={"why": why, "since": at})

    def mark_clean(self, reason: str, at: str, last_seq: int | None = None) -> None:
        """The agent flushed and closed its buffer: the last thing a clean stop does."""
        self.update(clean=True, stopping_reason=reason, stopped=at, last_seq=last_seq)


def remove_stale_temp(state_dir: Path) -> None:
    """Temp files left by a cut during a write are garbage (the rename never happened)."""
    for tmp in Path(state_dir).glob(f".{RUN_STATE_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
