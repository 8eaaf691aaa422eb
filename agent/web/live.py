"""What the page shows, kept from committed records only (the page never asks a driver or a worker).

One subscriber on the buffer: the latest value of every point with its quality and reason, each
device's state and last error, the agent's latest health record, recent alarms. A technician
sees exactly what the gateway has recorded — the same data the platform receives.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from buffer.record import Kind

if TYPE_CHECKING:
    from buffer.boundary import Committed

#: how many recent alarm transitions the page lists
RECENT_ALARMS = 50
#: sources and points kept (a hostile or broken producer must not grow memory without bound)
MAX_SOURCES = 512
MAX_POINTS = 1024


class LiveView:
    """Latest state per source, fed by ``Buffer.subscribe`` on the event loop."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, dict[str, Any]]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.health: dict[str, Any] | None = None
        self.health_at: float | None = None
        self.alarms: deque[dict[str, Any]] = deque(maxlen=RECENT_ALARMS)
        self.last_seq = 0

    def on_commit(self, committed: Sequence[Committed]) -> None:
        for item in committed:
            self.last_seq = max(self.last_seq, item.seq)
            rec = item.record
            payload = rec.payload
            if rec.kind is Kind.TELEMETRY and isinstance(payload.get("values"), dict):
                self._values(rec.source, rec.ts, payload["values"])
            elif rec.kind is Kind.HEALTH and rec.source == "agent":
                self.health, self.health_at = payload, rec.ts
            elif rec.kind is Kind.EVENT and payload.get("event") == "device_state":
                dev = self._device(rec.source)
                if dev is not None:
                    dev.update(state=payload.get("state"), reason=payload.get("reason"), since=rec.ts)
            elif rec.kind is Kind.ALARM:
                self.alarms.appendleft(
                    {
                        "seq": item.seq,
                        "ts": rec.ts,
                        "source": rec.source,
                        "alarm": payload.get("alarm"),
                        "state": payload.get("state"),
                        "id": payload.get("id"),
                        "severity": payload.get("severity"),
                        "text": payload.get("text"),
                    }
                )

    def _device(self, source: str) -> dict[str, Any] | None:
        if source not in self.devices and len(self.devices) >= MAX_SOURCES:
            return None
        return self.devices.setdefault(source, {"state": "unknown", "reason": None, "since": None})

    def _values(self, source: str, ts: float, values: dict[str, Any]) -> None:
        if source not in self.points and len(self.points) >= MAX_SOURCES:
            return
        points = self.points.setdefault(source, {})
        for name, entry in values.items():
            if not isinstance(entry, dict) or (name not in points and len(points) >= MAX_POINTS):
                continue
            points[name] = {
                "v": entry.get("v"),
                "q": entry.get("q"),
                "unit": entry.get("unit"),
                "reason": entry.get("reason"),
                "ts": ts,
            }

    def state(self, now: float | None = None) -> dict[str, Any]:
        """A JSON-able picture for the page (values as recorded; ages computed now)."""
        now = time.time() if now is None else now
        devices = {}
        for source in sorted(set(self.points) | set(self.devices)):
            dev = self.devices.get(source, {"state": "unknown", "reason": None, "since": None})
            devices[source] = {
                **dev,
                "points": [
                    {"name": name, **p, "age_s": round(now - p["ts"], 1)}
                    for name, p in sorted(self.points.get(source, {}).items())
                ],
            }
        return {
            "devices": devices,
            "health": self.health,
            "health_age_s": None if self.health_at is None else round(now - self.health_at, 1),
            "recent_alarms": list(self.alarms),
            "last_seq": self.last_seq,
        }
