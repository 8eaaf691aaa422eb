"""Real records for mapping tests: committed by a real BufferStore (chained), then leased."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from agent.uplink import JsonFormatter, Topics
from agent.uplink.mapping import MappingFormatter
from buffer import BufferStore
from buffer.boundary import StoredRecord
from buffer.record import Attachment, Kind, Record
from config import Settings, load_settings, load_settings_text

KEY = b"k" * 32
#: 2026-11-25 02:10:00.123 UTC = 10:10:00.125 in Asia/Shanghai
TS = 1795572600.125


def stored(tmp: Path, records: list[Record], *, gateway: str = "gw-01", site: str = "mine-a") -> list[StoredRecord]:
    store = BufferStore(tmp / "b.db", gateway=gateway, site=site, chain_key=KEY, max_unsynced_s=0)
    try:
        store.append(records)
        return sorted(store.lease(len(records) + 10), key=lambda r: r.seq)  # lease order is by priority
    finally:
        store.close()


def telemetry(source: str = "meter-main", ts: float = TS, **values: Any) -> Record:
    vals = values or {"p_total": {"v": 45.5, "q": "good", "unit": "kW"}, "u_l1": {"v": 231, "q": "stale", "unit": "V"}}
    return Record(source, Kind.TELEMETRY, {"group": "default", "values": vals}, ts=ts, clock_synced=True)


def alarm(source: str = "cam-3", ts: float = TS) -> Record:
    payload = {"alarm": "occupancy_limit", "state": "raised", "zone": "landing", "count": 11, "limit": 10}
    return Record(
        source, Kind.ALARM, payload, ts=ts, clock_synced=True, attachments=(Attachment("s.jpg", "image/jpeg", b"\xff\xd8jpg"),)
    )


def formatter_from(settings: Settings) -> MappingFormatter:
    return MappingFormatter(settings, JsonFormatter(Topics(settings)))


def formatter_yaml(text: str) -> MappingFormatter:
    return formatter_from(load_settings_text(text))


def formatter_file(path: Path) -> MappingFormatter:
    return formatter_from(load_settings(path))


def messages(fmt: MappingFormatter, recs: list[StoredRecord]) -> list[tuple[str, Any]]:
    return [(m.topic, orjson.loads(m.payload)) for rec in recs for m in fmt.format_all(rec)]
