"""The technician's look into a running camera worker: its latest frame and its track trail.

Only on request, over a pipe of its own (never the record channel): a worker nobody looks at
pays nothing. The worker answers between two frames (``PeekServer.serve``, a non-blocking
poll each loop turn): a JPEG of the last frame it analysed (encoded then, a few ms) or a copy
of its track trail (``vision.trail``). While the stream is lost it answers with the last
frame it had and says the camera is offline, so the page can keep editing on that picture.

The agent side (``PeekLine``) sends one request at a time, tagged, and waits with a timeout
on a thread (never on the event loop); a worker that is restarting or hung is an answer too.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the agent imports this module for ``PeekLine``: no OpenCV, numpy or tracker there
    import numpy as np

    from vision.trail import TrackTrail

log = logging.getLogger("headframe.vision")

#: snapshots are scaled down to this width at most (the page draws on them; it needs no 4K)
SNAPSHOT_WIDTH = 960


class PeekUnavailable(Exception):
    """The worker cannot answer now (not running, restarting, hung); the text says why."""


class PeekServer:
    """Worker side: remembers the last frame, answers requests between frames."""

    def __init__(self, conn: Connection, quality: int = 80) -> None:
        self.conn, self.quality = conn, quality
        self.frame: np.ndarray | None = None
        self.ts: float | None = None
        self.trail: TrackTrail | None = None
        self._sender: threading.Thread | None = None

    def offer(self, frame: np.ndarray, ts: float) -> None:
        self.frame, self.ts = frame, ts  # a reference: the source hands out a new array per frame

    def serve(self, online: bool, error: str | None) -> None:
        """Answer whatever is waiting; never raises into, nor blocks, the worker's loop.

        The answer is built here (between two frames) and sent from a thread: an answer larger
        than the pipe's buffer waits for the agent to read it, and an agent that gave up waiting
        must not stall the analysis (it drains the stale answer at its next request). While one
        answer is still on its way, new requests wait in the pipe for the next turn."""
        try:
            while not (self._sender is not None and self._sender.is_alive()) and self.conn.poll():
                tag, what = self.conn.recv()
                answer = (tag, self._answer(what, online, error))
                self._sender = threading.Thread(target=self._send, args=(answer,), daemon=True, name="peek-send")
                self._sender.start()
        except (EOFError, OSError, ValueError, TypeError) as exc:  # the agent went away or sent garbage
            log.debug("peek: %s", exc)

    def _send(self, answer: tuple[int, dict[str, Any]]) -> None:
        try:
            self.conn.send(answer)
        except (OSError, ValueError) as exc:
            log.debug("peek: %s", exc)

    def _answer(self, what: str, online: bool, error: str | None) -> dict[str, Any]:
        base: dict[str, Any] = {"online": online, "error": error, "ts": self.ts}
        if what == "snapshot":
            return {**base, "jpeg": self._jpeg()}
        if what == "trail":
            return {**base, "trail": self.trail.copy() if self.trail is not None else None}
        return {**base, "unknown": what}

    def _jpeg(self) -> bytes | None:
        import cv2

        if self.frame is None:
            return None
        frame = self.frame
        h, w = frame.shape[:2]
        if w > SNAPSHOT_WIDTH:
            frame = cv2.resize(frame, (SNAPSHOT_WIDTH, round(h * SNAPSHOT_WIDTH / w)), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return jpg.tobytes() if ok else None


class PeekLine:
    """Agent side of one camera's pipe; ``renew`` at each worker start, ``ask`` from a thread."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._tags = itertools.count(1)

    def renew(self) -> Connection:
        """A new pipe for a new worker process; returns the worker's end."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            ours, theirs = self._ctx.Pipe(duplex=True)
            self._conn = ours
            return theirs

    def ask(self, what: str, timeout: float = 5.0) -> dict[str, Any]:
        """The worker's answer to ``what`` ("snapshot" | "trail"); raises ``PeekUnavailable``."""
        with self._lock:  # one request at a time on this pipe
            conn = self._conn
            if conn is None:
                raise PeekUnavailable("the camera worker is not running")
            tag = next(self._tags)
            try:
                while conn.poll():  # a late answer to an earlier request that timed out
                    conn.recv()
                conn.send((tag, what))
                end = time.monotonic() + timeout
                while (left := end - time.monotonic()) > 0 and conn.poll(left):
                    got, answer = conn.recv()
                    if got == tag:
                        return answer
            except (EOFError, OSError) as exc:
                raise PeekUnavailable(f"the camera worker went away ({exc})") from None
            raise PeekUnavailable(f"the camera worker did not answer within {timeout:.0f} s")
