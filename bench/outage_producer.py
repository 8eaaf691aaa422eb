"""Compressed-time producer for ``bench.outage_soak`` (a bench tool, not a device driver).

Emits what ``OUTAGE_DEVICES`` meters polled at 1 Hz would produce over ``OUTAGE_HOURS`` hours:
one telemetry record per device per simulated second, eight changing values each (like a
three-phase meter), with the simulated observation time as ``ts`` (the outage ends now). It
emits at most ``OUTAGE_RATE`` records per real second and pauses while more than ``QUEUE_HIGH``
wait for the writer (the emit queue must not overflow: that would be a different loss than the
byte cap this soak is about). Progress goes
to ``OUTAGE_PROGRESS`` (JSON) once a second and when done; a file beside it with the suffix
``.stop`` ends the outage early (the soak's time budget). Enabled with
``HEADFRAME_EXTRA_PRODUCERS=bench.outage_producer``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from buffer.record import Kind, Record
from buffer.sink import RecordSink

#: Above this many records waiting for the writer the producer pauses: compressed time runs as
#: fast as the machine commits, and the emit queue (200 000) never overflows.
QUEUE_HIGH = 20_000
POINTS = (
    ("p_total", "kW"),
    ("e_total", "kWh"),
    ("u_l1", "V"),
    ("u_l2", "V"),
    ("u_l3", "V"),
    ("i_l1", "A"),
    ("i_l2", "A"),
    ("i_l3", "A"),
)


class OutageProducer:
    name = "outage"

    def __init__(self, sink: RecordSink, devices: int, hours: float, rate: float, progress: Path | None) -> None:
        self.sink, self.devices, self.hours, self.rate, self.progress = sink, devices, hours, rate, progress
        self.emitted = 0
        self.sim_s = 0
        self.done = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def _payload(self, dev: int, sec: int) -> dict[str, Any]:
        x = sec * 0.001 + dev
        return {
            "values": {
                name: {"v": round(x * (i + 1) % 400, 3), "unit": unit, "q": "good"} for i, (name, unit) in enumerate(POINTS)
            }
        }

    def _report(self, t0: float) -> None:
        if self.progress is None:
            return
        doc = {"emitted": self.emitted, "sim_s": self.sim_s, "done": self.done, "elapsed_s": time.monotonic() - t0}
        tmp = self.progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.progress)

    async def _run(self) -> None:
        total_s = int(self.hours * 3600)
        sim0 = time.time() - total_s
        t0 = last_report = time.monotonic()
        for sec in range(total_s):
            for dev in range(self.devices):
                self.sink.emit(Record(f"meter-{dev}", Kind.TELEMETRY, self._payload(dev, sec), ts=sim0 + sec + dev * 1e-4))
            self.emitted += self.devices
            self.sim_s = sec + 1
            ahead = self.emitted / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
            elif self.sim_s % 10 == 0:
                await asyncio.sleep(0)
            while self._queued() > QUEUE_HIGH:  # the writer is behind: wait, as a slower clock would
                await asyncio.sleep(0.05)
            if time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                self._report(t0)
                if self.progress is not None and self.progress.with_suffix(".stop").exists():
                    break  # the soak ran out of time: the outage ends here
        self.done = True
        self._report(t0)

    def _queued(self) -> int:
        """Records emitted but not yet taken by the writer (0 if the sink does not say)."""
        queue = getattr(self.sink, "_queue", None)  # buffer.boundary.BufferService's EmitQueue
        return len(queue) if queue is not None else 0

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "emitted": self.emitted, "sim_s": self.sim_s, "done": self.done}


def build(settings: Any, sink: RecordSink) -> OutageProducer:
    progress = os.environ.get("OUTAGE_PROGRESS")
    return OutageProducer(
        sink,
        int(os.environ.get("OUTAGE_DEVICES", "100")),
        float(os.environ.get("OUTAGE_HOURS", "24")),
        float(os.environ.get("OUTAGE_RATE", "10000")),
        Path(progress) if progress else None,
    )
