"""Logging to journald when running under systemd, stderr otherwise."""

from __future__ import annotations

import logging
import os
import sys

#: Third-party loggers held at a level: pymodbus logs every discarded frame at ERROR with hex
#: dumps of a frame buffer shared by all devices, naming no device. Our drivers report the
#: same fault once per state change, naming the device and the cause ("bad frame: ...").
#: asyncua logs each lost session and failed request with tracebacks; the OPC UA driver words them.
THIRD_PARTY_LEVELS = {"pymodbus": logging.CRITICAL, "asyncua": logging.CRITICAL}


class _ThirdPartyTraceback(logging.Filter):
    """Drops asyncio's "protocol.data_received() call failed" tracebacks when the protocol is
    pymodbus raising in its own receive callback over a frame it cannot decode (the driver
    reports that request as a bad frame)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not type(exc).__module__.startswith(tuple(THIRD_PARTY_LEVELS))


_TRACEBACK_FILTER = _ThirdPartyTraceback()


def quiet_third_party() -> None:
    """Hold chatty libraries at their level; idempotent (CLI commands and the daemon call it)."""
    for name, lvl in THIRD_PARTY_LEVELS.items():
        logging.getLogger(name).setLevel(lvl)
    asyncio_log = logging.getLogger("asyncio")
    if _TRACEBACK_FILTER not in asyncio_log.filters:
        asyncio_log.addFilter(_TRACEBACK_FILTER)


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
            from systemd.journal import JournalHandler

            handler = JournalHandler(SYSLOG_IDENTIFIER="headframe")
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            target = "journald"
        except ImportError:
            handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if target == "stderr":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    quiet_third_party()
    return target
