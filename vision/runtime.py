"""The vision producer: one worker process per camera, supervised from the agent's loop.

A worker decodes and analyses; records come back as ``Record``s over a bounded channel
(``vision.channel``: alarms and events wait for room, telemetry may be dropped and is counted),
and its log lines come back over a queue of their own (``vision.worklog``). A worker that dies
or stops sending heartbeats is killed and restarted with back-off; its state is in health.
Polling never waits on video.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buffer.record import Kind, Record
from buffer.sink import RecordSink
from config.redact import redact
from config.schema import Settings
from config.vision import CameraSettings
from vision.channel import RecordChannel
from vision.peek import PeekLine
from vision.worklog import forward_logs

log = logging.getLogger("headframe.vision")
_CTX = mp.get_context("spawn")  # no fork of a threaded asyncio process


@dataclass(frozen=True)
class Recording:
    """Where and how a camera records evidence clips when the agent asks (``record_until``)."""

    root: str  # the buffer directory: clips go to <root>/evidence/<camera>/
    segment: float = 60.0
    fmt: str = "mp4"
    budget: int | None = None  # bytes of clips this camera may keep
    min_free: int = 0  # free bytes the clips always leave on the buffer's disk


def worker_main(
    cam_json: str,
    channel: RecordChannel,
    heartbeat: Any,
    stop: Any = None,
    log_queue: Any = None,
    log_level: str = "INFO",
    recording: Recording | None = None,
    until: Any = None,
    peek: Any = None,
    snapshot_at: Any = None,
) -> None:
    """Runs in the child: source → pipeline → channel. Exits non-zero on a fatal error."""
    import json

    from vision.worklog import configure_worker_logging

    cam = CameraSettings.model_validate(json.loads(cam_json))
    configure_worker_logging(cam.id, log_level, log_queue)
    wlog = logging.getLogger("headframe.vision.worker")
    try:
        _run_worker(cam, channel, heartbeat, stop, wlog, recording, until, peek, snapshot_at)
    except SystemExit:
        raise
    except Exception:
        wlog.exception("worker failed")
        raise SystemExit(1) from None


def _run_worker(
    cam: CameraSettings,
    channel: RecordChannel,
    heartbeat: Any,
    stop: Any,
    wlog: logging.Logger,
    recording: Recording | None = None,
    until: Any = None,
    peek_conn: Any = None,
    snapshot_at: Any = None,
) -> None:
    import cv2

    from vision.clips import ClipRecorder
    from vision.detector import ModelError
    from vision.peek import PeekServer
    from vision.pipeline import CameraPipeline
    from vision.snapshots import PeriodicSnapshot
    from vision.source import LatestFrameSource

    def beat() -> None:
        heartbeat.value = time.time()

    def send(record: Record) -> None:
        if record.kind is Kind.ALARM:  # the operator's log says what each camera raised, and why
            p = record.payload
            wlog.warning(
                "alarm %s%s %s%s",
                p.get("alarm"),
                f" {p['kind']}" if "kind" in p else "",
                p.get("state", ""),
                f": {p['reason']}" if p.get("reason") else "",
            )
        channel.send(record, beat)

    try:
        pipeline = CameraPipeline(cam, send)
    except (ModelError, ValueError) as exc:
        error = redact(str(exc))
        wlog.error("cannot start analysis: %s", error)
        send(Record(cam.id, Kind.EVENT, {"event": "camera_error", "error": error}))
        raise SystemExit(3) from None
    recorder = None
    if recording is not None and until is not None:
        recorder = ClipRecorder(
            cam.id,
            Path(recording.root),
            until,
            send,
            segment=recording.segment,
            fmt=recording.fmt,
            fps=cam.fps,
            budget=recording.budget,
            min_free=recording.min_free,
        )
        recorder.recover()
    snapshots = PeriodicSnapshot(cam.id, cam.snapshot_interval, last=snapshot_at)
    peek = PeekServer(peek_conn, cam.jpeg_quality) if peek_conn is not None else None
    if peek is not None:
        peek.trail = pipeline.trail
    source = LatestFrameSource(cam.url, cam.reconnect_max).start()
    period = 1.0 / cam.fps
    lost_since: float | None = None
    said: str | None = None  # the stream problem last logged, so a retrying source logs once
    reported: set[str] = set()  # stream faults already sent as events (a looping file ends each pass)
    while stop is None or not stop.is_set():
        beat()
        started = time.monotonic()
        if peek is not None:  # the technician's page: last frame / track trail, only when asked
            peek.serve(source.state == "streaming", source.error)
        if source.error != said:
            if source.error:
                wlog.warning("stream: %s (retrying)", source.error)
                if source.error not in reported and len(reported) < 100:
                    reported.add(source.error)
                    send(Record(cam.id, Kind.EVENT, {"event": "camera_stream_fault", "reason": source.error}))
            elif said:
                wlog.info("stream: back")
            said = source.error
        item = source.latest()
        if item is None:
            if recorder is not None:
                recorder.idle(time.time())
            if source.state == "lost":
                lost_since = lost_since or time.time()
                if time.time() - lost_since > 3 * period + 2:
                    pipeline.source_state(True, source.error or "no frames")
            time.sleep(period / 2)
            continue
        frame, ts = item
        if lost_since is not None:
            pipeline.source_state(False)
        lost_since = None
        pipeline.times.add("decode", source.take_decode_seconds())
        try:
            pipeline.process(frame, ts)
        except (ValueError, cv2.error) as exc:  # a corrupt frame: skip it, say so, keep going
            wlog.warning("frame skipped: %s", redact(str(exc)))
        else:
            if snapshots.due(ts):
                try:
                    send(snapshots.take(frame, ts))
                except (ValueError, cv2.error) as exc:
                    wlog.warning("snapshot skipped: %s", redact(str(exc)))
        if recorder is not None:
            recorder.frame(frame, ts)
        if peek is not None:
            peek.offer(frame, ts)
        time.sleep(max(0.0, period - (time.monotonic() - started)))
    if recorder is not None:
        recorder.close()
    source.stop(wait=0.5)  # a daemon thread: a read blocked on a dead stream must not delay the exit


class CameraWorker:
    """Supervises one camera's process."""

    def __init__(
        self,
        cam: CameraSettings,
        sink: RecordSink,
        log_level: str = "INFO",
        queue_size: int = 256,
        recording: Recording | None = None,
    ) -> None:
        self.cam, self.sink, self.log_level, self.recording = cam, sink, log_level, recording
        #: record evidence clips while frame time < this (epoch s); set by the agent, kept across restarts
        self.record_until: Any = _CTX.Value("d", 0.0)
        #: frame time of the last periodic snapshot, kept across worker restarts (a crash loop must
        #: not send a "first frame" picture at every restart)
        self.snapshot_at: Any = _CTX.Value("d", 0.0)
        self.channel = RecordChannel(_CTX, queue_size)
        self.logs: Any = _CTX.Queue(maxsize=1000)
        self.heartbeat: Any = _CTX.Value("d", 0.0)
        self.stopping: Any = _CTX.Event()
        self.proc: Any = None
        self.state = "starting"
        self.restarts = 0
        self.last_error: str | None = None
        self.stream_error: str | None = None  # why the stream is lost (credentials redacted), if it is
        self.next_start = 0.0
        self.started_at = 0.0
        self.tamper: list[str] = []
        self.fps = 0.0
        self.faults: list[str] = []  # the last stream faults and resolution changes, newest last
        self.stage_ms: dict[str, float] = {}
        self.inference_ms: float | None = None
        #: the technician's page asks the worker for a snapshot / its track trail here (vision/peek.py)
        self.peek = PeekLine(_CTX)

    def start(self) -> None:
        self.heartbeat.value = time.time()
        self.stopping.clear()
        self.proc = _CTX.Process(
            target=worker_main,
            args=(
                self.cam.model_dump_json(),
                self.channel,
                self.heartbeat,
                self.stopping,
                self.logs,
                self.log_level,
                self.recording,
                self.record_until,
                self.peek.renew(),
                self.snapshot_at,
            ),
            daemon=True,
            name=f"camera-{self.cam.id}",
        )
        self.proc.start()
        self.started_at = time.time()
        self.state = "running"

    def drain(self, limit: int = 200) -> int:
        """Hand queued records to the sink and worker log lines to the log; never waits."""
        forward_logs(self.logs)
        n = 0
        for record in self.channel.receive(limit):
            n += 1
            payload = record.payload
            if record.kind is Kind.TELEMETRY:
                self.tamper = payload.get("tamper", self.tamper)
                self.fps = payload.get("fps", self.fps)
                self.stage_ms = payload.get("stage_ms", self.stage_ms)
                self.inference_ms = payload.get("inference_ms", self.inference_ms)
            event = payload.get("event")
            if event == "camera_stream_fault":
                self._fault(payload["reason"])
            elif event == "camera_resolution_changed":
                self._fault("resolution changed from {}x{} to {}x{}".format(*payload["from"], *payload["to"]))
            if payload.get("event") == "camera_error":
                self.last_error = payload["error"]
            if payload.get("kind") == "signal_lost":
                self.stream_error = payload.get("reason") if payload.get("state") == "raised" else None
            self.sink.emit(record)
        return n

    def _fault(self, text: str) -> None:
        self.faults = [*[f for f in self.faults if f != text][-4:], text]

    def supervise(self) -> None:
        """Restart a dead or hung worker with back-off (2 s, 4 s, … capped at 60 s)."""
        now = time.time()
        if self.proc is None:
            if now >= self.next_start:
                self.start()
            return
        dead = not self.proc.is_alive()
        hung = now - self.heartbeat.value > self.cam.hang_timeout
        if not (dead or hung):
            return
        why = f"worker exited with code {self.proc.exitcode}" if dead else f"no heartbeat for {self.cam.hang_timeout:.0f}s"
        if hung:
            self.proc.kill()
        self.proc.join(2)
        self.drain()
        self.last_error = self.last_error if dead and self.last_error else why
        self.restarts += 1
        delay = min(60.0, 2.0 ** min(self.restarts, 6))
        self.next_start = now + delay
        self.state = "restarting"
        self.proc = None
        log.error("camera %s: %s; restart %d in %.0f s", self.cam.id, why, self.restarts, delay)
        self.sink.emit(
            Record(
                self.cam.id,
                Kind.EVENT,
                {"event": "camera_worker_restart", "reason": why, "restarts": self.restarts, "error": self.last_error},
            )
        )

    def stop(self, grace: float = 3.0) -> None:
        """Ask the worker to finish, draining while it does so nothing it queued is lost."""
        if self.proc is not None and self.proc.is_alive():
            self.stopping.set()
            end = time.monotonic() + grace
            while self.proc.is_alive() and time.monotonic() < end:
                self.drain()
                self.proc.join(0.05)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(3)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(1)
        while self.drain():
            pass
        self.state = "stopped"

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "fps": self.fps,
            "inference_ms": self.inference_ms,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "stream_error": self.stream_error,
            "faults": self.faults,
            "tamper": self.tamper,
            "stage_ms": self.stage_ms,
            "records": self.channel.stats(),
            **({"recording_until": self.record_until.value} if self.recording else {}),
        }


class Vision:
    name = "vision"

    def __init__(self, settings: Settings, sink: RecordSink) -> None:
        level = settings.logging.level
        hot = settings.rules.hotwork
        root = str(settings.buffer.path.parent)
        self.workers = []
        for cam in settings.cameras:
            if not cam.enabled:
                continue
            extra = hot.zones_of(cam.id)  # hot-work zones: presence only; permits are a rule's business
            recording = Recording(root, hot.segment, hot.clip_format, hot.clip_budget, hot.clip_min_free) if extra else None
            cam = cam.model_copy(update={"zones": [*cam.zones, *extra]}) if extra else cam
            self.workers.append(CameraWorker(cam, sink, level, recording=recording))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for w in self.workers:
            w.start()
        self._task = asyncio.create_task(self._loop(), name="vision-supervisor")

    async def _loop(self) -> None:
        while True:
            for w in self.workers:
                w.drain()
                w.supervise()
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in self.workers))

    def health(self) -> dict[str, Any]:
        return {"cameras": {w.cam.id: w.health() for w in self.workers}}

    def worker(self, camera: str) -> CameraWorker | None:
        """The running worker of ``camera`` (the technician's page peeks through it)."""
        return next((w for w in self.workers if w.cam.id == camera), None)

    def record_until(self, camera: str, until: float) -> bool:
        """The agent's order: record ``camera``'s evidence clips until ``until`` (epoch s; 0 = stop).
        False when this camera does not record (not running, or no hot-work zone)."""
        for w in self.workers:
            if w.cam.id == camera and w.recording is not None:
                w.record_until.value = until
                return True
        return False


def build(settings: Settings, sink: RecordSink) -> Vision | None:
    if not any(c.enabled for c in settings.cameras):
        return None
    return Vision(settings, sink)
