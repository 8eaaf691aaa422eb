"""A "power good" line of a UPS HAT, read from a file whose content is 0 or 1.

On a Raspberry Pi that is ``/sys/class/gpio/gpioN/value`` (or a file kept by a udev rule);
the tests use a plain file as a NAMED FAKE pin. The line only says mains present or not: no
battery charge, so ``power.stop_after`` decides when a long outage becomes "power failing".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.power.reading import PowerReading, PowerSourceError
from config.power import GpioSettings


class GpioSource:
    kind = "gpio"

    def __init__(self, settings: GpioSettings) -> None:
        self.path = Path(settings.path)
        self.active = settings.active

    @property
    def name(self) -> str:
        return str(self.path)

    async def read(self) -> PowerReading:
        try:
            text = await asyncio.to_thread(self.path.read_text)
        except OSError as exc:
            raise PowerSourceError(
                f"cannot read the power-good input {self.path} ({exc.strerror or exc}): "
                "is the GPIO exported and power.gpio.path right?"
            ) from None
        value = text.strip()
        if value not in ("0", "1"):
            shown = value[:20] + ("..." if len(value) > 20 else "")
            raise PowerSourceError(f"the power-good input {self.path} holds {shown!r}; expected 0 or 1")
        return PowerReading(on_line=int(value) == self.active, status=f"level {value}")

    def close(self) -> None:
        return None
