"""Evidence clips: a camera's frames written to video files while the agent says "record until T".

The worker does not know why it records (a hot-work permit, decided by a rule from committed
records): the agent sets a shared ``until`` (epoch seconds) and the worker records every frame
it analyses while the frame's time is before it, in segments of ``segment`` seconds. Each
finished file is hashed (SHA-256) and announced as an ``evidence_clip`` event, which the buffer
chains: the file stays on disk under the buffer directory (a clip is megabytes, above the
buffer's attachment cap; see docs/rules.md, "Hot work"), its hash and size are in the chain.

A file being written is named ``*.part.<ext>``; one left by a killed worker is hashed and
announced at the next start with ``"interrupted": true`` (its bytes are evidence too).

Clips must not fill the disk the buffer lives on: a full disk would stop the chain itself, which
is worse than losing old video. Before each segment the recorder keeps this camera's clips under
``budget`` bytes and the filesystem's free space above ``min_free`` plus one segment, deleting
the oldest finished clips first; every deletion is an ``evidence_clip_removed`` record (so the
chain says which clip went, when and why, and ``headframe verify`` does not call it damaged).
When deleting cannot make room, the segment is not started and ``evidence_clip_failed`` says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from buffer.record import Kind, Record

log = logging.getLogger("headframe.vision.clips")

FORMATS = {"mp4": ("mp4v", "video/mp4"), "avi": ("MJPG", "video/x-msvideo")}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the filesystem of ``path`` for an unprivileged writer, or None if unknown."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ClipRecorder:
    """Writes frames into segment files while ``until.value`` lies ahead of the frame time."""

    def __init__(
        self,
        camera: str,
        root: Path,
        until: Any,
        out: Callable[[Record], None],
        *,
        segment: float = 60.0,
        fmt: str = "mp4",
        fps: float = 4.0,
        budget: int | None = None,
        min_free: int = 0,
    ) -> None:
        self.camera, self.root, self.until, self.out = camera, root, until, out
        self.segment, self.fps = segment, fps
        self.fourcc, self.content_type = FORMATS[fmt]
        self.ext = fmt
        self.dir = root / "evidence" / camera
        self._writer: Any = None
        self._path: Path | None = None
        self._start = self._last = 0.0
        self._frames = 0
        self._size: tuple[int, int] | None = None
        self.clips = 0
        self._failed_at: float | None = None
        self.budget, self.min_free = budget, min_free
        #: finished clips of this camera, oldest first: (path, size)
        self._kept: list[tuple[Path, int]] = []
        self._scanned = False

    def recover(self) -> None:
        """Announce the clips a killed worker left unfinished (hashed as they are)."""
        if not self.dir.is_dir():
            return
        for part in sorted(self.dir.glob(f"*.part.{self.ext}")):
            final = part.with_name(part.name.replace(".part.", "."))
            os.replace(part, final)
            stat = final.stat()
            self._announce(final, stat.st_mtime, stat.st_mtime, None, interrupted=True)

    def _scan(self) -> None:
        """The finished clips already on disk (earlier runs), oldest first: names sort by time."""
        self._scanned = True
        if not self.dir.is_dir():
            return
        done = [p for p in self.dir.iterdir() if p.is_file() and ".part." not in p.name and p.suffix in (".mp4", ".avi")]
        known = {p for p, _ in self._kept}
        self._kept = sorted([*self._kept, *((p, p.stat().st_size) for p in done if p not in known)])

    def _make_room(self, ts: float) -> str | None:
        """Delete the oldest clips until one more segment fits; why it cannot fit, or None."""
        if not self._scanned:
            self._scan()
        segment = max((size for _, size in self._kept[-3:]), default=0)  # the next one is about as big
        while True:
            used = sum(size for _, size in self._kept)
            free = _free_bytes(self.root)
            over_budget = self.budget is not None and used + segment > self.budget
            short = free is not None and free < self.min_free + segment
            if not over_budget and not short:
                return None
            if not self._kept:  # nothing left to delete: the budget was an estimate, the floor is not
                if short and free is not None:
                    return f"{free // 2**20} MiB free on the buffer's disk, below clip_min_free ({self.min_free // 2**20} MiB)"
                return None
            path, size = self._kept.pop(0)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("evidence clip: cannot delete %s to make room: %s", path, exc)
                return f"cannot delete old clip {path.name}: {exc.strerror}"
            reason = "clip_budget" if over_budget else "clip_min_free"
            log.warning("evidence clip: deleted %s (%d bytes) to keep %s", path.name, size, reason)
            self.out(
                Record(
                    self.camera,
                    Kind.EVENT,
                    {
                        "event": "evidence_clip_removed",
                        "file": str(path.relative_to(self.root)),
                        "size": size,
                        "reason": reason,
                        "clips_bytes": used - size,
                        "free_bytes": free,
                    },
                    ts=ts,
                )
            )

    def frame(self, frame: np.ndarray, ts: float) -> None:
        if ts >= self.until.value:
            if self._writer is not None:
                self.close()
            return
        size = (frame.shape[1], frame.shape[0])
        if self._writer is not None and (ts - self._start >= self.segment or size != self._size):
            self.close()
        if self._writer is None and not self._open(size, ts):
            return
        self._writer.write(frame)
        self._frames += 1
        self._last = ts

    def idle(self, now: float) -> None:
        """No frame now (stream lost): a segment whose order ran out is still finished on time."""
        if self._writer is not None and now >= self.until.value:
            self.close()

    def _open(self, size: tuple[int, int], ts: float) -> bool:
        if self._failed_at is not None and ts - self._failed_at < self.segment:
            return False  # do not retry every frame: once a segment
        no_room = self._make_room(ts)
        if no_room is not None:
            return self._failed(self.dir, no_room, ts)
        stamp = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.dir / f"{self.camera}-{stamp}-{int(ts * 1000) % 1000:03d}.part.{self.ext}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, size)
            ok = writer.isOpened()
        except (OSError, cv2.error) as exc:
            ok, reason = False, str(exc)
        else:
            reason = "OpenCV could not open the video writer (disk full or not writable?)"
        if not ok:
            return self._failed(path, reason, ts)
        self._failed_at = None
        self._writer, self._path, self._size, self._start, self._frames = writer, path, size, ts, 0
        return True

    def _failed(self, path: Path, reason: str, ts: float) -> bool:
        self._failed_at = ts
        log.error("evidence clip: cannot write %s: %s", path, reason)
        self.out(Record(self.camera, Kind.EVENT, {"event": "evidence_clip_failed", "file": str(path), "error": reason}, ts=ts))
        return False

    def close(self) -> None:
        """Finish the current segment (if any): release, rename, hash, announce."""
        if self._writer is None or self._path is None:
            return
        self._writer.release()
        final = self._path.with_name(self._path.name.replace(".part.", "."))
        os.replace(self._path, final)
        self._announce(final, self._start, self._last, self._frames)
        self._writer = self._path = None

    def _announce(self, path: Path, start: float, end: float, frames: int | None, interrupted: bool = False) -> None:
        self.clips += 1
        if self._scanned:
            self._kept.append((path, path.stat().st_size))
        payload: dict[str, Any] = {
            "event": "evidence_clip",
            "file": str(path.relative_to(self.root)),
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
            "content_type": self.content_type,
            "start": _iso(start),
            "end": _iso(end),
            "frames": frames,
            "fps": self.fps,
        }
        if interrupted:
            payload["interrupted"] = True
        self.out(Record(self.camera, Kind.EVENT, payload, ts=end))
