"""The birth/death sequence number (``bdSeq``), kept in a small file across restarts.

A host matches an NDEATH to the NBIRTH of the same session by ``bdSeq``. If a restarted
gateway began at 0 again, the broker could still publish the will of the previous (dead)
connection, with the same number, after the new NBIRTH, and the host would declare the new
session dead. So each connection attempt takes the next number (0..255, wrapping) and saves it
before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path

from agent.atomicfile import atomic_write

log = logging.getLogger("headframe.uplink")


class BdSeq:
    """``next()`` per MQTT connection attempt; the number goes into the will and the NBIRTH."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = self._load()

    def _load(self) -> int:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return -1
        except OSError as exc:
            log.warning("sparkplug: cannot read %s (%s); bdSeq starts at 0", self.path, exc.strerror or exc)
            return -1
        if not text.isdigit() or int(text) > 255:
            log.warning("sparkplug: %s holds %r, not a bdSeq 0..255; bdSeq starts at 0", self.path, text[:16])
            return -1
        return int(text)

    def next(self) -> int:
        self.current = (self.current + 1) % 256
        try:
            atomic_write(self.path, f"{self.current}\n".encode())
        except OSError as exc:  # a full disk must not keep the link down; hosts see a repeat at worst
            log.warning("sparkplug: cannot save bdSeq to %s (%s)", self.path, exc.strerror or exc)
        return self.current
