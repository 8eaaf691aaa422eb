"""Evidence recording orders: committed ``evidence_recording`` records → the camera workers.

The hot-work rule (rules/hotwork.py) decides from committed records which camera must record
until when, and says so in a chained ``evidence_recording`` event; this commit subscriber hands
each order to the producer that owns the camera (``record_until(camera, until)``, implemented by
``vision.runtime.Vision``). Data flows one way: producers → buffer (+ rules) → this subscriber
→ a shared "record until" value the worker reads. Orders are kept here, so producers rebuilt by
a reload get them again; after a restart the rule repeats its standing orders on its first tick.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from buffer.record import Kind

if TYPE_CHECKING:
    from buffer.boundary import Buffer, Committed

log = logging.getLogger("headframe.agent")


class RecordingOrders:
    """Keeps the latest order per camera and applies it to whichever producers run now."""

    def __init__(self, buffer: Buffer, producers: Callable[[], Sequence[Any]]) -> None:
        self.producers = producers
        self.orders: dict[str, float] = {}
        self._unsubscribe = buffer.subscribe(self.on_commit)

    def on_commit(self, committed: Sequence[Committed]) -> None:
        changed = False
        for item in committed:
            rec = item.record
            if rec.kind is not Kind.EVENT or rec.payload.get("event") != "evidence_recording":
                continue
            until = rec.payload.get("until_ts")
            camera = rec.payload.get("camera")
            if not isinstance(camera, str) or not isinstance(until, int | float) or not math.isfinite(until):
                log.error("evidence recording: malformed order at seq %d ignored", item.seq)
                continue
            self.orders[camera] = float(until)
            changed = True
        if changed:
            self.apply()

    def apply(self) -> None:
        """Hand every order to the producers (called after each order and after producers start)."""
        for camera, until in self.orders.items():
            taken = False
            for producer in self.producers():
                record_until = getattr(producer, "record_until", None)
                if record_until is not None and record_until(camera, until):
                    taken = True
            if taken:
                log.info("evidence recording: camera %s records until %s", camera, until)
            else:
                log.warning("evidence recording: no running camera %s takes the order (yet; until %s)", camera, until)

    def close(self) -> None:
        self._unsubscribe()
