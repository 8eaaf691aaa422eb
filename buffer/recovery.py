"""Open the buffer database, or move a corrupt one aside and start a fresh one (no crash loop)."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("headframe.buffer")


def _open(path: Path, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.DatabaseError(f"journal_mode is {mode}, WAL could not be enabled")
    check = db.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        raise sqlite3.DatabaseError("quick_check: " + "; ".join(str(r[0]) for r in check[:5]))
    db.executescript(schema)
    db.execute("PRAGMA synchronous = FULL")
    return db


def open_or_recover(path: Path, schema: str) -> tuple[sqlite3.Connection, Path | None]:
    """Return an open, checked connection and, if recovery happened, where the bad file went."""
    try:
        return _open(path, schema), None
    except sqlite3.DatabaseError as exc:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        log.error(
            "buffer: database %s is corrupt (%s); moved aside to %s and starting a new one. "
            "Records in it were not delivered; inspect it with sqlite3 '.recover'.",
            path,
            exc,
            aside,
        )
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        return _open(path, schema), aside
