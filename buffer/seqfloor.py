"""A reserved sequence ceiling kept beside the database, so seq is never reused.

If the database is lost (corrupt, deleted), the agent restarts numbering above the last
reservation instead of at 1. Reservations are made in blocks, so this costs one fsync per
``block`` records.
"""

from __future__ import annotations

import os
from pathlib import Path


class SeqFloor:
    def __init__(self, path: Path, block: int = 100_000) -> None:
        self.path, self.block = path, block
        self._reserved = self.read()

    def read(self) -> int:
        """The highest seq that may already have been issued (0 when nothing was)."""
        try:
            return int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def ensure_above(self, seq: int) -> None:
        """Reserve a block above ``seq`` durably before any seq past the old reservation is used."""
        if seq <= self._reserved:
            return
        reserved = seq + self.block
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(f"{reserved}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._reserved = reserved
