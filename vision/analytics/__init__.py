"""Per-camera analytics. Each takes a FrameContext and says what it saw through an ``Emit``.

The record shape is ``buffer.record.Record`` from here to the buffer: ``Emit`` builds it (the
camera is the source, the frame's time is the timestamp) and the same object travels through
the pipeline, the worker's queue (it pickles as it is) and into the agent's sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from buffer.record import Attachment, Kind, Record
from vision.tracker import Track

#: Where a camera's records go: a sink's ``emit``, the worker's channel, a list's ``append``.
RecordOut = Callable[[Record], None]


class Emit:
    """Turns an analytic's finding into a Record of this camera at the current frame's time.

    Analytics only say what (kind, payload, evidence); who and when are the same for all of
    them, so they are added here once. ``ts`` is set by the pipeline per frame; ``None``
    means "now" (e.g. the source reporting a lost stream while no frame arrives).
    """

    def __init__(self, source: str, out: RecordOut) -> None:
        self.source, self.out = source, out
        self.ts: float | None = None

    def __call__(self, kind: Kind, payload: dict[str, Any], attachments: tuple[Attachment, ...] = ()) -> None:
        ts = time.time() if self.ts is None else self.ts
        self.out(Record(self.source, kind, payload, ts=ts, attachments=attachments))


@dataclass
class FrameContext:
    frame: np.ndarray
    ts: float
    index: int
    tracks: list[Track]
    detected: bool  # did the detector run on this frame

    @property
    def size(self) -> tuple[int, int]:
        return self.frame.shape[1], self.frame.shape[0]


class Cadence:
    """Says when an analysis that needs no every-frame rate is due, in media time.

    Due on the first frame, then every ``interval`` seconds on a fixed grid (frame jitter does
    not drift it); after a gap or a clock step back it restarts from the frame at hand.
    ``interval`` 0 = every frame.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: float | None = None

    def due(self, ts: float) -> bool:
        nxt, step = self._next, self.interval
        if nxt is not None and nxt - 3600 < ts and ts + 1e-6 < nxt:
            return False
        on_grid = nxt is not None and nxt - 3600 < ts < nxt + step
        self._next = nxt + step if on_grid and nxt is not None else ts + step
        return True
