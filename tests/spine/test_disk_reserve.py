"""The disk reserve: on a real tmpfs filled by something else, alarms are still committed.

Without it (``reserve: 0``) the same alarms wait in memory, where a stop would lose them: that
run is the baseline, and it is what the test checks first, so the test cannot pass by accident.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import buffer.store
from buffer import Attachment, Kind, Record
from buffer.boundary import BufferService
from config import load_settings_text
from tests.spine.test_boundary import docs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as CI has): {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem says no more (ENOSPC)."""
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\xff" * 65536)
                fh.flush()
        except OSError:
            pass


def alarms_after_the_disk_fills(disk: Path, reserve: str) -> tuple[int, dict[str, object], list[int]]:
    """Start a buffer, fill the disk, raise 200 alarms; (uncommitted, reserve state, alarms stored)."""
    cfg = load_settings_text(
        json.dumps({"gateway": {"site": "s", "id": "gw"}, "buffer": {"path": str(disk / "b.db"), "reserve": reserve}})
    )
    svc = BufferService(cfg)

    async def go() -> tuple[int, dict[str, object]]:
        await svc.open()
        try:
            svc.emit(Record("m", Kind.TELEMETRY, {"v": 1}))
            await svc.flush()
            fill(disk / "other-program.log")
            for n in range(200):
                svc.emit(Record("cam", Kind.ALARM, {"n": n, "pad": "x" * 300}))
                if n % 20 == 19:
                    await svc.flush()
            stats = await svc.stats()
            return int(stats["uncommitted"]), dict(stats["disk_reserve"])
        finally:
            await svc.close()

    uncommitted, state = asyncio.run(go())
    (disk / "other-program.log").unlink()
    stored = sorted(d["payload"]["n"] for d in docs(disk / "b.db") if d["source"] == "cam")
    return uncommitted, state, stored


def test_alarms_are_committed_on_a_full_disk_thanks_to_the_reserve(disk: Path) -> None:
    uncommitted, state, stored = alarms_after_the_disk_fills(disk, reserve="0")
    assert uncommitted > 0 and len(stored) < 200, "without a reserve the full disk must hold alarms back"
    for leftover in disk.iterdir():
        leftover.unlink()

    uncommitted, state, stored = alarms_after_the_disk_fills(disk, reserve="2MiB")
    assert uncommitted == 0 and stored == list(range(200))
    assert state == {"held": False, "bytes": 2 * 1024**2, "released": 1}


def test_the_reserve_is_made_again_once_the_disk_has_room(disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffer.store, "RESERVE_RETRY_S", 0.0)
    store = buffer.store.BufferStore(disk / "b.db", gateway="gw", site="s", reserve_bytes=1024**2)
    try:
        reserve = disk / "b.db.reserve"
        assert reserve.stat().st_size == 1024**2 and reserve.stat().st_blocks * 512 >= 1024**2  # real blocks
        fill(disk / "other")
        with pytest.raises(buffer.store.BufferFull):  # telemetry never takes the reserve
            store.commit([Record("m", Kind.TELEMETRY, {"pad": "y" * 200_000})])
        assert reserve.exists() and store.reserve.released == 0
        snapshot = Record(
            "cam", Kind.EVENT, {"event": "camera_snapshot"}, attachments=(Attachment("s.jpg", "image/jpeg", b"j" * 150_000),)
        )
        with pytest.raises(buffer.store.BufferFull):  # nor does an event carrying a picture
            store.commit([snapshot])
        assert reserve.exists() and store.reserve.released == 0
        store.commit([Record("cam", Kind.ALARM, {"n": 0, "pad": "x" * 5000})])  # an alarm does
        assert not reserve.exists() and store.reserve.released == 1
        with pytest.raises(buffer.store.BufferFull):  # and telemetry may not fill the room it freed
            store.commit([Record("m", Kind.TELEMETRY, {"v": 1})])
        store.commit([Record("cam", Kind.ALARM, {"n": 0.5})])  # the next alarm still finds room
        (disk / "other").unlink()
        store.commit([Record("cam", Kind.ALARM, {"n": 1})])
        assert reserve.stat().st_size == 1024**2 and store.stats()["disk_reserve"]["held"] is True
    finally:
        store.close()
