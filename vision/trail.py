"""The last minutes of a camera's tracks, to recount them against a line the technician is drawing.

Why trajectories and not video: the line counter only reads the tracker's confirmed tracks
(their measured foot points, box height, label, misses). Detection and tracking do not depend
on the lines, so feeding the *same* tracks to a ``LineCounter`` with another line gives exactly
the counts the camera would have produced with that line over the same minutes — without
decoding or detecting again (a few MB in the worker, a fraction of a second of CPU to recount,
against minutes of detector time to replay video). The limits: a crossing whose track started
before the ring's oldest frame is seen from mid-way (it counts only if both sides are in the
window), and a detector change (model, threshold) is not replayed — the tracks are what ran.

The worker keeps the ring (``TrackTrail.add`` per analysed frame, bounded in seconds and in
entries); the agent asks for a copy over the worker's pipe (``vision.peek``) and recounts it
with ``recount`` on a thread of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from config.vision import LineSettings
from vision.analytics import Emit, FrameContext
from vision.analytics.lines import LineCounter
from vision.tracker import Track

#: how far back the replay reaches (seconds of the camera's own frame time)
TRAIL_SECONDS = 300.0
#: at most this many track entries in the ring (a crowded view must not grow the worker's memory)
MAX_ENTRIES = 60_000

#: (track id, label, x1, y1, x2, y2, missed, foot points measured since the previous frame)
TrackEntry = tuple[int, str, float, float, float, float, int, tuple[tuple[int, float, float], ...]]


@dataclass(frozen=True)
class TrailFrame:
    index: int  # the pipeline's analysed-frame number (the counter's relink window is in these)
    ts: float
    tracks: tuple[TrackEntry, ...]


@dataclass(frozen=True)
class Trail:
    """A copy of the ring, as sent to the agent (pickles as plain tuples)."""

    camera: str
    size: tuple[int, int]  # (w, h) the tracks are in pixels of
    frames: tuple[TrailFrame, ...]

    @property
    def seconds(self) -> float:
        return self.frames[-1].ts - self.frames[0].ts if len(self.frames) > 1 else 0.0


class TrackTrail:
    """Bounded ring of the confirmed tracks of each analysed frame (worker side)."""

    def __init__(self, camera: str, seconds: float = TRAIL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.camera, self.seconds, self.max_entries = camera, seconds, max_entries
        self.frames: deque[TrailFrame] = deque()
        self.entries = 0
        self.size: tuple[int, int] | None = None
        self._sent: dict[int, int] = {}  # track id -> last foot point frame already in the ring

    def add(self, ctx: FrameContext) -> None:
        if self.size != ctx.size:  # a new geometry (first frame): older tracks are in other pixels
            self.frames.clear()
            self.entries, self.size = 0, ctx.size
        tracks = []
        for t in ctx.tracks:
            if t.id is None:
                continue
            last = self._sent.get(t.id, -1)
            new = tuple((f, float(x), float(y)) for f, x, y in t.history if f > last)
            if t.history:
                self._sent[t.id] = t.history[-1][0]
            x1, y1, x2, y2 = (float(v) for v in t.box)
            tracks.append((t.id, t.label, x1, y1, x2, y2, t.missed, new))
        live = {t.id for t in ctx.tracks}
        for tid in [k for k in self._sent if k not in live]:
            del self._sent[tid]
        self.frames.append(TrailFrame(ctx.index, ctx.ts, tuple(tracks)))
        self.entries += len(tracks)
        while self.frames and (ctx.ts - self.frames[0].ts > self.seconds or self.entries > self.max_entries):
            self.entries -= len(self.frames.popleft().tracks)

    def copy(self) -> Trail:
        return Trail(self.camera, self.size or (0, 0), tuple(self.frames))


def recount(trail: Trail, lines: Sequence[LineSettings]) -> dict[str, dict[str, int]]:
    """In/out counts (people) of each line over the trail, as the camera's counter would count them."""
    counters = [LineCounter(line, Emit(trail.camera, lambda record: None)) for line in lines]
    tracks: dict[int, Track] = {}
    frame = np.zeros((1, 1, 3), dtype=np.uint8)  # the counter reads only the size: see ``_Sized``
    for item in trail.frames:
        current = []
        for tid, label, x1, y1, x2, y2, missed, new in item.tracks:
            t = tracks.get(tid)
            if t is None:  # (a sentinel point never read: a track seen from mid-way has no earlier points)
                t = tracks[tid] = Track(np.array([x1, y1, x2, y2]), label, 1.0, id=tid, history=[(-1, 0.0, 0.0)])
            t.box = np.array([x1, y1, x2, y2])
            t.missed = missed
            t.history.extend(new)
            del t.history[:-64]
            current.append(t)
        for tid in [k for k in tracks if k not in {t.id for t in current}]:
            del tracks[tid]
        ctx = _Sized(frame, item.ts, item.index, current, True, trail.size)
        for counter in counters:
            counter.process(ctx)
    return {c.settings.name: {"in": c.total("in"), "out": c.total("out")} for c in counters}


class _Sized(FrameContext):
    """A frame context without pixels: the trail's tracks are in ``size`` pixels."""

    def __init__(
        self, frame: np.ndarray, ts: float, index: int, tracks: list[Track], detected: bool, size: tuple[int, int]
    ) -> None:
        super().__init__(frame, ts, index, tracks, detected)
        self._size = size

    @property
    def size(self) -> tuple[int, int]:
        return self._size
