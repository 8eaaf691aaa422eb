"""The gateway's own health record (schema ``headframe.health/1``, docs/mqtt.md)."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from agent.uplink import iso_now
from agent.version import VERSION


def read_temperature() -> float | None:
    """SoC/CPU temperature in °C where the kernel exposes one (Raspberry Pi, most IPCs)."""
    try:
        temps = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        temps = {}
    for name in ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "acpitz"):
        for entry in temps.get(name, []):
            if entry.current:
                return round(float(entry.current), 1)
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*/temp")):
        try:
            return round(int(Path(zone).read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            continue
    return None


class HealthCollector:
    """Builds the health payload from the agent's parts; cheap enough to run every few seconds."""

    def __init__(self, disk_path: Path, clock_synced: Callable[[], bool | None]) -> None:
        self.disk_path = disk_path
        self.clock_synced = clock_synced
        self.started_mono = time.monotonic()
        self.started = iso_now()
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        psutil.cpu_percent(None)

    def system(self) -> dict[str, Any]:
        try:
            disk = psutil.disk_usage(str(self.disk_path))
            free, used_pct = disk.free, disk.percent
        except OSError:
            free, used_pct = None, None
        return {
            "cpu_percent": psutil.cpu_percent(None),
            "agent_cpu_percent": self._proc.cpu_percent(None),
            "load1": round(os.getloadavg()[0], 2),
            "mem_percent": psutil.virtual_memory().percent,
            "rss_bytes": self._proc.memory_info().rss,
            "disk_path": str(self.disk_path),
            "disk_free_bytes": free,
            "disk_used_percent": used_pct,
            "temperature_c": read_temperature(),
        }

    def build(
        self,
        *,
        buffer: dict[str, Any],
        uplink: dict[str, Any],
        producers: dict[str, Any],
        previous_shutdown: str,
        config_hash: str | None = None,
        power: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        counters = buffer.pop("counters", {})
        buffer["dropped"] = {k.removeprefix("dropped_"): v for k, v in counters.items() if k.startswith(("dropped_", "expired_"))}
        buffer["delivered_total"] = counters.get("delivered", 0)
        return {
            "schema": "headframe.health/1",
            "agent": {
                "version": VERSION,
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - self.started_mono, 1),
                "started": self.started,
                "previous_shutdown": previous_shutdown,
            },
            "config_hash": config_hash,
            "buffer": buffer,
            "uplink": uplink,
            "system": self.system(),
            "clock": {"synchronized": self.clock_synced()},
            "producers": producers,
            "power": power or {"source": "none"},
        }
