"""SIGHUP and SIGTERM that arrive before the agent's event loop handles them are remembered, not fatal.

``headframe run`` spends its first seconds importing (OpenCV, pymodbus, ...) and opening the
buffer; Python's default for SIGHUP and SIGTERM ends the process on the spot. A deploy script
that edits the config and sends SIGHUP right after a start, or a ``systemctl stop`` during
start-up, would kill the agent in that window — the next start would then read a crash.
``remember_early_signals`` is installed first thing in the CLI; once its own handlers are in
place the daemon asks ``take_sighup`` (a reload after start-up) and ``take_sigterm`` (a clean
stop right after start-up) (docs/agent.md, "Signals").
"""

from __future__ import annotations

import signal
from types import FrameType

_received: set[int] = set()


def _note(signum: int, frame: FrameType | None) -> None:
    _received.add(signum)


def remember_early_signals() -> None:
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, _note)


def remember_sighup() -> None:
    """Kept for callers that only want SIGHUP remembered."""
    signal.signal(signal.SIGHUP, _note)


def _take(sig: int) -> bool:
    seen = sig in _received
    _received.discard(sig)
    return seen


def take_sighup() -> bool:
    """True once if a SIGHUP came in since ``remember_early_signals``."""
    return _take(signal.SIGHUP)


def take_sigterm() -> bool:
    """True once if a SIGTERM came in since ``remember_early_signals``."""
    return _take(signal.SIGTERM)
