"""Logging to journald when running under systemd, stderr otherwise."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO", journald: str = "auto") -> str:
    """Configure the root logger once; returns where logs go ("journald" or "stderr")."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    target = "stderr"
    want_journal = journald == "on" or (journald == "auto" and bool(os.environ.get("JOURNAL_STREAM")))
    if want_journal:
        try:
            from systemd.journal import JournalHandler  # type: ignore[import-not-found]

            handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="headframe")
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            target = "journald"
        except ImportError:
            handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if target == "stderr":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return target
