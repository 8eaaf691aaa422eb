"""HTTP MJPEG camera server streaming real video files, with fault modes for the HIL rig.

``GET /<name>.mjpg`` streams ``multipart/x-mixed-replace`` JPEG frames of a looping video
at its own frame rate. Modes (set per stream, e.g. from a scenario): ``normal``, ``covered``
(black frames), ``frozen`` (the same frame again and again), ``blurred``, ``half`` (the
stream switches to half the resolution, as an encoder reconfigured mid-stream), ``down`` (the
connection is refused / closed). ``show(name, clip)`` switches what a stream shows to another
video of ``clips`` (e.g. a person walking into a seal camera's empty view), scaled to the
stream's resolution so the camera's geometry keeps its meaning.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = b"headframeframe"


class CameraServer:
    def __init__(
        self, videos: dict[str, Path], port: int = 0, fps: float | None = None, clips: dict[str, Path] | None = None
    ) -> None:
        self.videos = dict(videos)
        self.clips = dict(clips or {})
        self.modes: dict[str, str] = dict.fromkeys(videos, "normal")
        self.fps = fps
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                name = self.path.strip("/").removesuffix(".mjpg")
                if name not in server.videos or server.modes.get(name) == "down":
                    self.send_error(404 if name not in server.videos else 503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                try:
                    server._stream(name, self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self._stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        # Streaming threads are joined on close: a thread left inside OpenCV while the
        # interpreter exits aborts the whole process ("terminate called ...").
        self.httpd.daemon_threads = False
        self.httpd.block_on_close = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="camera-server")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.mjpg"

    def show(self, name: str, clip: str) -> None:
        """From now on stream ``name`` shows ``clips[clip]`` (open connections switch too)."""
        if name not in self.videos or clip not in self.clips:
            raise KeyError(f"no stream {name!r} or clip {clip!r} (clips: {sorted(self.clips)})")
        self.videos[name] = self.clips[clip]

    def start(self) -> CameraServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _stream(self, name: str, out: BufferedIOBase) -> None:
        showing = self.videos[name]
        cap = cv2.VideoCapture(str(showing))
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 10.0
        size: tuple[int, int] | None = None  # the stream's resolution: its first frame's
        last: np.ndarray | None = None
        while not self._stopping.is_set():
            mode = self.modes.get(name, "normal")
            if mode == "down":
                break
            if self.videos[name] != showing:
                cap.release()
                showing = self.videos[name]
                cap = cv2.VideoCapture(str(showing))
            if mode != "frozen" or last is None:
                ok, frame = cap.read()
                if not ok:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                if size is None:
                    size = (frame.shape[1], frame.shape[0])
                elif (frame.shape[1], frame.shape[0]) != size:
                    frame = cv2.resize(frame, size)
                last = frame
            frame = last
            if mode == "covered":
                frame = np.full_like(frame, 8)
            elif mode == "blurred":
                frame = cv2.GaussianBlur(frame, (31, 31), 0)
            elif mode == "half":
                frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
            ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            out.write(
                b"--"
                + BOUNDARY
                + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(jpg)).encode()
                + b"\r\n\r\n"
                + jpg.tobytes()
                + b"\r\n"
            )
            time.sleep(1.0 / fps)
        cap.release()
