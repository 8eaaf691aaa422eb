"""A few MiB held back on the buffer's disk for the alarms of a full disk.

When the filesystem is full and every low-priority record has been evicted, the WAL cannot grow
and even an alarm cannot be committed: it would wait in memory and die with the process. So the
store keeps a plain file of ``size`` bytes beside the database (``buffer.db.reserve``) with its
blocks allocated (``posix_fallocate``; not a sparse file, which would free nothing). A commit of
alarms and events only that still finds no room deletes it and retries: the room it frees is
enough for thousands of alarm records and a WAL checkpoint. The release is logged and shown in
health; the file is made again once the disk has room for it twice over.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("headframe.buffer")

#: default size: ~20,000 alarm records of 400 bytes, plus the WAL frames to commit them
DEFAULT_RESERVE = 8 * 1024**2


class DiskReserve:
    """The reserve file: ``ensure`` makes it when there is room, ``release`` frees it."""

    def __init__(self, path: Path, size: int = DEFAULT_RESERVE) -> None:
        self.path, self.size = path, size
        self.released = 0  # times released since start (health)

    @property
    def held(self) -> bool:
        try:
            return self.size > 0 and self.path.stat().st_size >= self.size
        except OSError:
            return False

    @property
    def spent(self) -> bool:
        """Released and not made again yet."""
        return self.released > 0 and not self.held

    def short(self) -> bool:
        """The disk has less free than twice the reserve: telemetry would eat the alarms' room."""
        try:
            return shutil.disk_usage(self.path.parent).free < 2 * self.size
        except OSError:
            return True

    def ensure(self) -> bool:
        """Make the reserve if it is missing and the disk has room for it twice; True if held."""
        if self.size <= 0 or self.held:
            return self.size > 0
        try:
            if shutil.disk_usage(self.path.parent).free < 2 * self.size:
                return False
            part = self.path.with_name(self.path.name + ".part")
            with open(part, "wb") as fh:
                # real blocks, not a sparse file (which would free nothing); glibc writes zeros
                # where the filesystem cannot allocate them directly
                os.posix_fallocate(fh.fileno(), 0, self.size)
                os.fsync(fh.fileno())
            os.replace(part, self.path)
        except OSError as exc:  # a full or read-only disk: try again later
            log.warning("buffer: cannot make the disk reserve %s: %s", self.path, exc)
            try:
                self.path.with_name(self.path.name + ".part").unlink(missing_ok=True)
            except OSError:
                pass
            return False
        return True

    def release(self) -> int:
        """Delete the reserve so alarms can be committed on a full disk; bytes freed (0 if none)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("buffer: cannot release the disk reserve %s: %s", self.path, exc)
            return 0
        self.released += 1
        log.error("buffer: disk full with only alarms/events left to store: released the %d-byte disk reserve", size)
        return size
