"""Logging of spawned camera workers: every line reaches the agent's log with the camera named.

A spawned process starts with logging unconfigured (warnings to bare stderr, nothing else).
The worker puts its log records on a small queue of its own; the parent hands them to its
own handlers (journald or stderr, as ``agent.logsetup`` set up), so the worker's lines land
where the agent's do, at the configured level, and each says which camera it is about.
Credentials in URLs are masked in the worker, before a line leaves it.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
from typing import Any

from config.redact import redact


class _CameraLine(logging.Formatter):
    """The message as the parent will print it: camera named, traceback folded in, URLs redacted."""

    def __init__(self, camera: str) -> None:
        super().__init__()
        self.camera = camera

    def format(self, record: logging.LogRecord) -> str:
        return redact(f"camera {self.camera}: {super().format(record)}")


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never blocks the worker on logging: a full log queue drops the line and counts it."""

    def __init__(self, q: Any) -> None:
        super().__init__(q)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


def configure_worker_logging(camera: str, level: str, log_queue: Any | None) -> None:
    """Run first thing in the worker. Without a queue (run by hand) lines go to stderr."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(level)
    handler: logging.Handler
    if log_queue is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Stderr(camera))
    else:
        handler = _DroppingQueueHandler(log_queue)
        handler.setFormatter(_CameraLine(camera))
    root.addHandler(handler)
    logging.captureWarnings(True)


class _Stderr(_CameraLine):
    def format(self, record: logging.LogRecord) -> str:
        return f"{self.formatTime(record)} {record.levelname} {record.name}: {super().format(record)}"


def forward_logs(log_queue: Any, limit: int = 200) -> int:
    """In the parent: hand queued worker log records to this process's loggers."""
    n = 0
    while n < limit:
        try:
            record: logging.LogRecord = log_queue.get_nowait()
        except (queue.Empty, EOFError, OSError):
            break
        n += 1
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
    return n
