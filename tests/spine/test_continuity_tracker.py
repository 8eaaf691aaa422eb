"""ContinuityTracker against the real buffer (BufferService + SQLite store) in one process:
link-down gaps through the uplink hook, clock jumps, camera fault periods, a start gap left
unfinished by a second kill, and the dotted keys of the config audit."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson

from agent.continuity import ContinuityTracker, changed_keys, state_path_for
from agent.continuity.config_audit import effective_doc, key_hashes
from agent.continuity.gaps import iso
from buffer.boundary import BufferService
from buffer.record import Kind, Record
from config.loader import load_settings_text
from config.schema import Settings


def settings_for(tmp_path: Path, extra: dict[str, Any] | None = None) -> Settings:
    doc: dict[str, Any] = {"gateway": {"site": "s", "id": "g"}, "buffer": {"path": str(tmp_path / "buf.db")}, **(extra or {})}
    return load_settings_text(json.dumps(doc), "test.yaml")


class Rig:
    """A real buffer boundary with a tracker subscribed, driven step by step."""

    def __init__(self, tmp_path: Path, *, clock: Any = None, mono: Any = None) -> None:
        self.settings = settings_for(tmp_path)
        self.buffers = BufferService(self.settings, lambda: True)
        kw = {k: v for k, v in (("clock", clock), ("mono", mono)) if v is not None}
        self.tracker = ContinuityTracker(self.settings, state_path_for(self.settings.buffer.path), self.buffers.emit, **kw)

    async def open(self, ended: str = "crash") -> None:
        opened = await self.buffers.open()
        self.buffers.subscribe(self.tracker.on_commit)
        self.tracker.load()
        self.tracker.begin(ended, opened.last_seq)

    async def put(self, *records: Record) -> None:
        for rec in records:
            self.buffers.emit(rec)
        await self.buffers.flush()

    def payloads(self, kind: Kind = Kind.EVENT) -> list[dict[str, Any]]:
        assert self.buffers.store is not None
        rows = self.buffers.store.db.execute("SELECT body FROM records WHERE prio = ? ORDER BY seq", (kind.priority,))
        return [orjson.loads(r[0])["payload"] for r in rows]

    def gaps(self) -> list[dict[str, Any]]:
        return [p for p in self.payloads() if p.get("event") == "gap"]

    async def close(self) -> None:
        await self.buffers.flush()
        self.tracker.close()
        await self.buffers.close()


def tel(n: int, ts: float | None = None) -> Record:
    rec = Record("plc-1", Kind.TELEMETRY, {"values": {"speed": {"v": n, "q": "good"}}})
    if ts is not None:
        rec.ts = ts
    return rec


def test_link_down_gap_from_the_uplink_hook_counts_the_backfilled_records(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(tmp_path)
        await rig.open()
        await rig.put(*(tel(i) for i in range(5)))
        seq_before = rig.buffers.store.last_seq  # type: ignore[union-attr]
        lost_at = 1_795_000_000.0
        rig.tracker.on_link_lost(lost_at)
        await rig.put(*(tel(i) for i in range(7)))  # committed while the link was down
        gap = rig.tracker.on_link_restored(lost_at, lost_at + 95.5)
        await rig.buffers.flush()
        stored = rig.gaps()[-1]
        assert stored == gap
        assert gap["cause"] == "link_down"
        assert gap["from"] == {"seq": seq_before, "ts": "2026-11-18T11:06:40.000Z"}
        assert gap["to"]["seq"] == seq_before + 7 and gap["to"]["ts"] == "2026-11-18T11:08:15.500Z"
        assert gap["backfilled"] == 7 and gap["duration_s"] == 95.5
        assert not [p for p in rig.payloads(Kind.ALARM) if p.get("alarm") == "gateway_dark_while_site_ran"]
        await rig.close()

    asyncio.run(go())


def test_link_down_without_the_pin_places_the_loss_from_the_history(tmp_path: Path) -> None:
    now = [1_795_000_000.0]

    async def go() -> None:
        rig = Rig(tmp_path, clock=lambda: now[0], mono=lambda: now[0] - 1_700_000_000.0)
        await rig.open()
        await rig.put(tel(1))
        first = rig.buffers.store.last_seq  # type: ignore[union-attr]
        now[0] += 10
        await rig.put(tel(2), tel(3))
        at_loss = rig.buffers.store.last_seq  # type: ignore[union-attr]
        now[0] += 10
        await rig.put(tel(4), tel(5), tel(6))
        gap = rig.tracker.on_link_restored(now[0] - 8, now[0] + 1)
        assert gap["from"]["seq"] == at_loss != first
        assert gap["from"]["seq_within_s"] == 5.0
        assert gap["backfilled"] == 3
        assert gap["energy"] == [] and "backfilled" in gap["energy_note"]
        await rig.close()

    asyncio.run(go())


def test_runtime_clock_jump_gives_a_gap_with_both_clocks(tmp_path: Path) -> None:
    wall, mono = [1_795_000_000.0], [1000.0]

    async def go() -> None:
        rig = Rig(tmp_path, clock=lambda: wall[0], mono=lambda: mono[0])
        await rig.open()
        await rig.put(tel(1, ts=wall[0]))
        rig.tracker.tick()
        assert rig.gaps() == []
        mono[0] += 1.0
        wall[0] -= 3600.0  # the clock was stepped back an hour
        rig.tracker.tick()
        await rig.put(tel(2, ts=wall[0]))  # the first record after the jump closes the gap
        await rig.buffers.flush()
        gap = rig.gaps()[-1]
        assert gap["cause"] == "clock_jump"
        assert gap["clock"]["jump_s"] == -3601.0
        assert gap["clock"]["wall_before"] == "2026-11-18T11:06:41.000Z"
        assert gap["clock"]["wall_after"] == "2026-11-18T10:06:40.000Z"
        assert gap["to"]["seq"] == gap["from"]["seq"] + 1
        await rig.close()

    asyncio.run(go())


def test_start_with_the_wall_clock_behind_the_last_record_is_a_clock_jump(tmp_path: Path) -> None:
    wall = [1_795_000_000.0]

    async def go() -> None:
        rig = Rig(tmp_path, clock=lambda: wall[0])
        await rig.open()
        await rig.put(tel(1, ts=wall[0]))
        await rig.close()
        wall[0] -= 86400 * 365  # RTC battery flat: the gateway boots a year in the past
        rig = Rig(tmp_path, clock=lambda: wall[0])
        await rig.open(ended="unknown")
        await rig.put(tel(2, ts=wall[0]))
        rig.tracker.arm_energy_timeout()
        await rig.buffers.flush()
        gap = rig.gaps()[-1]
        assert gap["cause"] == "clock_jump" and gap["previous_run"] == "unknown"
        assert gap["clock"]["wall_behind_s"] == 86400 * 365
        assert gap["duration_s"] is None
        await rig.close()

    asyncio.run(go())


def test_camera_fault_periods_overlapping_the_gap_are_listed(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(tmp_path)
        await rig.open()
        t0 = float(int(time.time()) - 3600)  # closed faults are kept a week: recent ones
        alarms = [
            ("cam-1", "signal_lost", "raised", t0),
            ("cam-2", "covered", "raised", t0 + 1),
            ("cam-2", "covered", "cleared", t0 + 5),
            ("cam-3", "moved", "raised", t0 + 100),
        ]
        for cam, kind, state, ts in alarms:
            rec = Record(cam, Kind.ALARM, {"alarm": "tamper", "kind": kind, "state": state})
            rec.ts = ts
            await rig.put(rec)
        gap = rig.tracker.on_link_restored(t0 + 2, t0 + 50)
        assert gap["camera_faults"] == [
            {"source": "cam-1", "alarm": "camera_lost", "from": iso(t0), "to": None},
            {"source": "cam-2", "alarm": "camera_tamper", "kind": "covered", "from": iso(t0 + 1), "to": iso(t0 + 5)},
        ]
        await rig.close()
        # after a restart, faults still open when the gateway went dark are in the start gap
        rig = Rig(tmp_path)
        await rig.open(ended="unknown")
        await rig.put(tel(1))
        await rig.buffers.flush()
        faults = rig.gaps()[-1]["camera_faults"]
        assert [(f["source"], f["to"]) for f in faults] == [("cam-1", None), ("cam-3", None)]
        await rig.close()

    asyncio.run(go())


def test_a_start_gap_left_unfinished_by_a_second_kill_is_written_at_the_next_start(tmp_path: Path) -> None:
    energy = {"values": {"e": {"v": 10.0, "q": "good", "unit": "kWh"}}}

    async def go() -> None:
        rig = Rig(tmp_path)
        rig.tracker._expected = {"meter/e": 1.0}
        await rig.open()
        await rig.put(Record("meter", Kind.TELEMETRY, energy))
        await rig.close()
        # second run: the meter never answers and the agent is killed before the wait ends
        rig = Rig(tmp_path)
        rig.tracker._expected = {"meter/e": 1.0}
        await rig.open(ended="unknown")
        await rig.put(tel(1))
        assert rig.gaps() == []
        rig.tracker.save()
        assert rig.buffers.store is not None
        rig.buffers.store.close(clean=False)  # simulated kill: no clean stop, no gap written
        rig.buffers._pool.shutdown()
        # third run: the unfinished gap comes first, with the reason it is incomplete
        rig = Rig(tmp_path)
        rig.tracker._expected = {"meter/e": 1.0}
        await rig.open(ended="crash")
        await rig.buffers.flush()
        first = rig.gaps()[0]
        assert first["cause"] == "unplugged"
        (entry,) = first["energy"]
        assert entry["before_ts"].endswith("Z")  # when the 'before' reading was taken
        assert {k: v for k, v in entry.items() if k != "before_ts"} == {
            "source": "meter",
            "point": "e",
            "before_kwh": 10.0,
            "unknown": "meter not answering (the agent stopped again before the meter answered)",
        }
        await rig.close()

    asyncio.run(go())


def test_changed_keys_are_dotted_paths_named_once_per_added_section(tmp_path: Path) -> None:
    dev = {
        "id": "meter-1",
        "protocol": "modbus_tcp",
        "host": "127.0.0.1",
        "points": [{"name": "e", "unit": "kWh"}],
        "groups": [{"name": "default", "interval": "1s"}],
    }
    a = settings_for(tmp_path, {"devices": [dev]})
    dev2 = {**dev, "groups": [{"name": "default", "interval": "2s"}]}
    b = settings_for(tmp_path, {"devices": [dev2, {**dev, "id": "meter-2"}], "uplink": {"keepalive": 45}})
    keys_a, keys_b = key_hashes(effective_doc(a)), key_hashes(effective_doc(b))
    assert changed_keys(keys_a, keys_b) == ["devices[meter-1].groups[default].interval", "devices[meter-2]", "uplink.keepalive"]
    assert changed_keys(keys_b, keys_a) == ["devices[meter-1].groups[default].interval", "devices[meter-2]", "uplink.keepalive"]
    assert changed_keys(keys_a, keys_a) == []


def test_a_meter_first_reading_and_the_first_record_are_saved_without_waiting(tmp_path: Path) -> None:
    """A gateway unplugged 2 s after start must still leave 'before' values for the next gap."""

    def kwh(v: float) -> Record:
        return Record("meter-1", Kind.TELEMETRY, {"values": {"e_total": {"v": v, "unit": "kWh", "q": "good"}}})

    async def go() -> None:
        rig = Rig(tmp_path)
        await rig.open()
        rig.tracker.save()
        await rig.put(tel(1))
        assert rig.tracker._save_due(), "the first record of a run is saved at the next turn"
        rig.tracker.save()
        await rig.put(tel(2))
        assert not rig.tracker._save_due(), "later records wait for the interval"
        await rig.put(kwh(1000.0))
        assert rig.tracker._save_due(), "a meter's first energy reading is saved at the next turn"
        rig.tracker.save()
        await rig.put(kwh(1000.5))
        assert not rig.tracker._save_due()
        await rig.close()

    asyncio.run(go())


def test_the_state_takes_a_new_config_only_once_its_audit_record_is_committed(tmp_path: Path) -> None:
    """A stop between a reload and the commit of its config_applied record must not lose the change."""
    from agent.continuity.config_audit import describe

    async def go() -> None:
        rig = Rig(tmp_path)
        await rig.open()
        cfg_path = tmp_path / "c.yaml"
        cfg_path.write_text("gateway: {site: s, id: g}\n")
        salt = rig.tracker.audit_salt()
        first = describe(rig.settings, cfg_path, salt)
        rig.buffers.emit(Record("agent", Kind.EVENT, rig.tracker.config_applied(first, "start")))
        await rig.buffers.flush()
        assert rig.tracker.state.config_hash == first.hash
        changed = settings_for(tmp_path, {"health": {"interval": "7s"}})
        second = describe(changed, cfg_path, salt)
        payload = rig.tracker.config_applied(second, "reload")
        assert payload["changed"] == ["health.interval"]
        assert rig.tracker.state.config_hash == first.hash, "not before the record is committed"
        rig.buffers.emit(Record("agent", Kind.EVENT, payload))
        await rig.buffers.flush()
        assert rig.tracker.state.config_hash == second.hash
        await rig.close()

    asyncio.run(go())
