"""A SIGHUP that arrives before the agent's event loop handles it is remembered, not fatal.

``headframe run`` spends its first seconds importing (OpenCV, pymodbus, ...) and opening the
buffer; Python's default for SIGHUP ends the process. A deploy script that edits the config and
sends SIGHUP right after a start would kill the agent in that window. ``remember_sighup`` is
installed first thing in the CLI; the daemon asks ``take_sighup`` once its own handler is in
place and, if one came in, runs the reload after start-up (docs/agent.md, "Signals").
"""

from __future__ import annotations

import signal
from types import FrameType

_received = False


def _note(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = True


def remember_sighup() -> None:
    signal.signal(signal.SIGHUP, _note)


def take_sighup() -> bool:
    """True once if a SIGHUP came in since ``remember_sighup``."""
    global _received
    seen, _received = _received, False
    return seen
