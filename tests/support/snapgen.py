"""A producer of alarm records with binary attachments, for uplink tests (test tool, not a camera).

Enabled with ``HEADFRAME_EXTRA_PRODUCERS=tests.support.snapgen``: at start it emits
``SNAPGEN_COUNT`` alarms (default 3) from source ``snap``, each with two attachments whose bytes
:func:`snapshot_bytes` reproduces, so a test can compare what reached the broker.
"""

from __future__ import annotations

import os
from typing import Any

from buffer.record import Attachment, Kind, Record
from buffer.sink import RecordSink


def snapshot_bytes(n: int, part: int) -> bytes:
    """Deterministic binary content (all 256 byte values) of alarm ``n``'s attachment ``part``."""
    return bytes((i * (n + 3) + part) % 256 for i in range(3000 + 500 * part))


class SnapGen:
    name = "snapgen"

    def __init__(self, sink: RecordSink, count: int) -> None:
        self.sink, self.count = sink, count

    async def start(self) -> None:
        for n in range(self.count):
            atts = (
                Attachment(f"snap-{n}.jpg", "image/jpeg", snapshot_bytes(n, 0)),
                Attachment(f"snap-{n}-crop.png", "image/png", snapshot_bytes(n, 1)),
            )
            self.sink.emit(Record("snap", Kind.ALARM, {"alarm": "test_snapshot", "n": n}, attachments=atts))

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "emitted": self.count}


def build(settings: Any, sink: RecordSink) -> SnapGen:
    return SnapGen(sink, int(os.environ.get("SNAPGEN_COUNT", "3")))
