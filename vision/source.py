"""Video sources through OpenCV (FFmpeg backend): RTSP, HTTP MJPEG, USB, files.

A reader thread keeps only the newest frame, so analysis never falls behind a live stream
(frames are dropped, never queued). Lost streams are reopened with capped back-off.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from config.redact import redact

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|stimeout;5000000")


class MjpegCapture:
    """HTTP MJPEG (multipart JPEG) read directly: frames are cut at JPEG SOI/EOI markers.

    OpenCV's FFmpeg backend probes an endless multipart stream for up to its 30 s open
    timeout before giving up on our test server, so HTTP MJPEG is read here; RTSP, files
    and USB cameras go through OpenCV (FFmpeg/V4L2). Same ``isOpened/read/release`` API.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import http.client
        import urllib.request

        self._buf = b""
        self._resp = None
        try:  # urllib refuses user:password@ in the URL: send it as HTTP basic auth instead
            plain, headers = _basic_auth(url)
            self._resp = urllib.request.urlopen(urllib.request.Request(plain, headers=headers), timeout=timeout)
        except (OSError, ValueError, http.client.HTTPException):  # a malformed URL: its text may hold the password
            self._resp = None

    def isOpened(self) -> bool:
        return self._resp is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, jpg = self.read_encoded()
        if not ok or jpg is None:
            return False, None
        return True, cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)  # None: a corrupt JPEG

    def read_encoded(self) -> tuple[bool, bytes | None]:
        """The next JPEG as received, not decoded: the reader keeps only the newest and the
        analysis decodes the ones it uses (a 10 fps camera analysed at 4 fps: 6 decodes saved)."""
        if self._resp is None:
            return False, None
        while True:
            start = self._buf.find(b"\xff\xd8")
            end = self._buf.find(b"\xff\xd9", start + 2) if start >= 0 else -1
            if start >= 0 and end >= 0:
                jpg, self._buf = self._buf[start : end + 2], self._buf[end + 2 :]
                return True, jpg
            try:
                chunk = self._resp.read1(65536) if hasattr(self._resp, "read1") else self._resp.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                return False, None
            self._buf = self._buf[-4_000_000:] + chunk

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        if self._resp is not None:
            self._resp.close()


def _basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pw@host/x`` → (``http://host/x``, Authorization header)."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=hostport)), {"Authorization": f"Basic {token}"}


def open_capture(url: str) -> cv2.VideoCapture | MjpegCapture:
    if url.startswith("usb:"):
        return cv2.VideoCapture(int(url[4:]), cv2.CAP_V4L2)
    if url.startswith(("http://", "https://")):
        return MjpegCapture(url)
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG)


class LatestFrameSource:
    """Live source: ``latest()`` returns the newest frame (or None); state says what is wrong."""

    def __init__(self, url: str, reconnect_max: float = 30.0) -> None:
        self.url, self.reconnect_max = url, reconnect_max
        self.state = "connecting"
        self.error: str | None = None
        self.frames = 0
        self.corrupt = 0
        self.decode_s = 0.0  # reader-thread CPU seconds reading/decoding, taken by the worker
        self._frame: tuple[np.ndarray | bytes, float] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="video-reader")

    def start(self) -> LatestFrameSource:
        self._thread.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        """Stop reading; ``wait`` bounds the join (a read may block for the 5 s socket timeout)."""
        self._stop.set()
        self._thread.join(wait)

    def take_decode_seconds(self) -> float:
        """CPU seconds the reader spent decoding since the last call (frames dropped included)."""
        with self._lock:
            spent, self.decode_s = self.decode_s, 0.0
        return spent

    def latest(self) -> tuple[np.ndarray, float] | None:
        """The newest frame (decoded here if the reader kept it encoded), or None."""
        with self._lock:
            item, self._frame = self._frame, None
        if item is None or isinstance(item[0], np.ndarray):
            return item  # type: ignore[return-value]
        cpu = time.thread_time()
        frame = cv2.imdecode(np.frombuffer(item[0], np.uint8), cv2.IMREAD_COLOR)
        with self._lock:
            self.decode_s += time.thread_time() - cpu
        if frame is None:
            self.corrupt += 1
            return None
        return frame, item[1]

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            cap = open_capture(self.url)
            if not cap.isOpened():
                self.state, self.error = "lost", f"cannot open {redact(self.url)}"
                self._stop.wait(delay)
                delay = min(self.reconnect_max, delay * 2)
                continue
            is_file = os.path.exists(self.url)
            fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
            expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if is_file else 0
            read = 0
            encoded = isinstance(cap, MjpegCapture)
            while not self._stop.is_set():
                cpu = time.thread_time()
                frame: np.ndarray | bytes | None
                ok, frame = cap.read_encoded() if isinstance(cap, MjpegCapture) else cap.read()
                spent = time.thread_time() - cpu
                if not ok:
                    self.state, self.error = "lost", _ended(self.url, is_file, read, expected)
                    break
                if frame is None or (not encoded and (frame.ndim != 3 or frame.size == 0)):  # type: ignore[union-attr]
                    self.corrupt += 1
                    continue
                if read == 0:
                    self.state, self.error, delay = "streaming", None, 0.5
                read += 1
                with self._lock:
                    self._frame = (frame, time.time())
                    self.decode_s += spent
                self.frames += 1
                if is_file:  # a file plays at its own rate, as a camera would
                    time.sleep(1.0 / fps)
            cap.release()
            self._stop.wait(delay)
            delay = min(self.reconnect_max, delay * 2)


def _ended(url: str, is_file: bool, read: int, expected: int) -> str:
    """Why reading stopped, in words an operator can act on (credentials redacted)."""
    if not is_file:
        return "stream ended or closed" if read else f"{redact(url)} opened but sent no decodable frame"
    if read == 0:
        return f"file {url} has no decodable frame (corrupt or not a video)"
    if expected and read < expected - 1:
        return f"file {url} ended after {read} of {expected} frames (truncated or corrupt)"
    return f"end of file {url}"


def file_frames(path: str) -> Iterator[tuple[np.ndarray, float]]:
    """Every frame of a file as fast as it decodes (offline replay), with media timestamps."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {redact(path)}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    start = time.time()
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame, start + i / fps
        i += 1
    cap.release()
