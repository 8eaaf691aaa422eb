"""Each camera's line counts as recorded, for the camera view (one more commit subscriber).

Counts come from committed records only: the camera's telemetry (``lines``) and each
``line_crossing`` event (it carries the line's running totals). A reload restarts the camera
workers and their counters, so a ``config_reloaded`` record starts a new period: the page then
shows the counts of the lines as saved, from that moment on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from buffer.record import Kind

if TYPE_CHECKING:
    from buffer.boundary import Committed

MAX_CAMERAS = 64
MAX_LINES = 64


class CameraCounts:
    def __init__(self) -> None:
        self.lines: dict[str, dict[str, dict[str, int]]] = {}
        self.since = time.time()
        self.reloads = 0

    def on_commit(self, committed: Sequence[Committed]) -> None:
        for item in committed:
            rec, payload = item.record, item.record.payload
            if rec.source == "agent" and payload.get("event") == "config_reloaded":
                self.lines.clear()
                self.since, self.reloads = rec.ts, self.reloads + 1
            elif rec.kind is Kind.TELEMETRY and isinstance(payload.get("lines"), dict):
                for name, counts in payload["lines"].items():
                    if isinstance(counts, dict):
                        self._set(rec.source, name, _person(counts.get("in")), _person(counts.get("out")))
            elif rec.kind is Kind.EVENT and payload.get("event") == "line_crossing":
                self._set(rec.source, str(payload.get("line")), payload.get("in"), payload.get("out"))

    def _set(self, camera: str, line: str, n_in: Any, n_out: Any) -> None:
        if not (isinstance(n_in, int) and isinstance(n_out, int)):
            return
        if camera not in self.lines and len(self.lines) >= MAX_CAMERAS:
            return
        lines = self.lines.setdefault(camera, {})
        if line in lines or len(lines) < MAX_LINES:
            lines[line] = {"in": n_in, "out": n_out}

    def of(self, camera: str) -> dict[str, Any]:
        return {"lines": self.lines.get(camera, {}), "since": self.since, "reloads": self.reloads}


def _person(by_class: Any) -> int | None:
    return by_class.get("person", 0) if isinstance(by_class, dict) else None
