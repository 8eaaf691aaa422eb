"""The drivers producer: builds buses, drivers and pollers from the config and runs them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from buffer.sink import RecordSink
from config.drivers import DeviceSettings, PointSettings
from config.profiles import known_profiles
from config.schema import Settings
from drivers.bus import SerialBus
from drivers.device import DevicePoller
from drivers.registry import make_driver

log = logging.getLogger("headframe.drivers")

#: TCP connects in flight at once across all devices. Every device polls in its own task, so
#: all connect at start without waiting for one another; this bounds the burst (and the
#: reconnects after a switch reboot). A dead device holds one slot for one connect timeout.
CONNECT_CONCURRENCY = 32


def device_points(dev: DeviceSettings) -> list[PointSettings]:
    """The profile's points (if any) followed by the device's own; own points override by name."""
    points: dict[str, PointSettings] = {}
    if dev.profile:
        default_group = dev.groups[0].name
        for p in known_profiles()[dev.profile].points:
            points[p.name] = p.model_copy(update={"group": default_group}) if p.group == "default" else p
    for p in dev.points:
        points[p.name] = p
    return list(points.values())


class Drivers:
    name = "drivers"

    def __init__(self, settings: Settings, sink: RecordSink, connect_concurrency: int = CONNECT_CONCURRENCY) -> None:
        self.settings, self.sink = settings, sink
        self.buses = {b.name: SerialBus(b) for b in settings.buses}
        self.connect_slots = asyncio.Semaphore(connect_concurrency)
        self.pollers: list[DevicePoller] = [
            DevicePoller(dev, device_points(dev), sink, make_driver(dev, self.buses, self.connect_slots))
            for dev in settings.devices
            if dev.enabled
        ]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stop = asyncio.Event()
        for poller in self.pollers:
            for group in poller.groups:
                if any(p.group == group for p in poller.points):
                    self._tasks.append(
                        asyncio.create_task(poller.run_group(group, self._stop), name=f"poll-{poller.dev.id}-{group}")
                    )
        log.info("drivers: polling %d device(s) on %d serial bus(es)", len(self.pollers), len(self.buses))

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for poller in self.pollers:
            await poller.driver.close()
        for bus in self.buses.values():
            await bus.close()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"devices": {p.dev.id: p.health_dict() for p in self.pollers}}
        out["buses"] = {
            name: {
                "open": b.port is not None,
                "error": b.open_error,
                "bytes_out": b.bytes_out,
                "bytes_in": b.bytes_in,
                "bytes_noise": b.bytes_noise,
            }
            for name, b in self.buses.items()
        }
        return out


def build(settings: Settings, sink: RecordSink) -> Drivers | None:
    if not settings.devices:
        return None
    return Drivers(settings, sink)
