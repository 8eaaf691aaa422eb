"""Gap records across real agent restarts, with a real pymodbus meter whose energy counter rises.

The agent runs as a process (``headframe run``) with no broker reachable, so everything it
commits stays in the buffer and is read back from the database file. The cause of the end of
the previous run is the agent's own boot evidence; "switched off or unplugged" needs a new
boot id, so those runs use the simulated-reboot test hook ``HEADFRAME_FAKE_BOOT_ID``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.spine.helpers import buffered_payloads
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port, wait_port
from tests.support.wait import wait_until

EVENT, ALARM = 1, 0


@pytest.fixture
def meter() -> Iterator[tuple[RegisterImage, int]]:
    """An SDM630-like meter on Modbus TCP (real pymodbus server)."""
    image = RegisterImage(size=400)
    port = free_port()
    server = ServerThread({1: image}, tcp_port=port).start()
    wait_port(port)
    yield image, port
    server.stop()


def set_energy(image: RegisterImage, kwh: float) -> None:
    for addr in (72, 342):  # energy_import, energy_total
        image.set_float("input", addr, kwh)


def site_config(tmp_path: Path, meter_port: int, db: Path) -> Path:
    dead_port = free_port()  # nothing listens here: a meter that does not answer
    extra: dict[str, Any] = {
        "devices": [
            {
                "id": "meter-main",
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": meter_port,
                "profile": "eastron_sdm630",
                "groups": [{"name": "default", "interval": "0.5s"}],
                "timeout": "0.5s",
            },
            {
                "id": "meter-dead",
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": dead_port,
                "timeout": "0.3s",
                "points": [{"name": "e_total", "table": "input", "address": 0, "type": "float32", "unit": "kWh"}],
            },
        ],
        "continuity": {"dark_site_kwh": 0.05, "energy_timeout": "4s", "state_interval": "0.5s"},
    }
    # the uplink points at a port nobody listens on: every record stays in the buffer
    return write_config(tmp_path / "c.yaml", free_port(), buffer_path=db, extra=extra, health_interval="30s")


def state(db: Path) -> dict[str, Any]:
    try:
        return json.loads(db.with_name(db.name + ".continuity.json").read_text())
    except (OSError, ValueError):
        return {}


def saved_energy(db: Path, kwh: float) -> bool:
    reading = state(db).get("energy", {}).get("meter-main/energy_total")
    return bool(reading) and abs(reading[0] - kwh) < 1e-3


def gaps(db: Path) -> list[dict[str, Any]]:
    """Gap records, one per gap_id (a gap re-sent after a stop is a duplicate, as a consumer dedupes)."""
    out: dict[str, dict[str, Any]] = {}
    for p in buffered_payloads(db, EVENT):
        if p.get("event") == "gap":
            out.setdefault(p["gap_id"], p)
    return list(out.values())


def gap_committed(db: Path) -> bool:
    """The tracker saw its gap record committed and forgot it (state saved after the commit)."""
    st = state(db)
    return bool(st) and st.get("pending_gap") is None


def started_seqs(db: Path) -> list[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        docs = [orjson.loads(r[0]) for r in con.execute("SELECT body FROM records WHERE prio = 1 ORDER BY seq")]
    finally:
        con.close()
    return [d["seq"] for d in docs if d["payload"].get("event") == "agent_started"]


def last_seq(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT MAX(seq) FROM records").fetchone()[0])
    finally:
        con.close()


def dark_alarms(db: Path) -> list[dict[str, Any]]:
    return [p for p in buffered_payloads(db, ALARM) if p.get("alarm") == "gateway_dark_while_site_ran"]


def start(agents: list[AgentProcess], tmp_path: Path, cfg: Path, name: str, boot: str | None = None) -> AgentProcess:
    """``boot``: a simulated boot id (TEST HOOK): a different one than the last run's is a reboot."""
    env = {"HEADFRAME_FAKE_BOOT_ID": boot or ""}
    agent = AgentProcess(cfg, env=env, log=tmp_path / f"{name}.log")
    agents.append(agent)
    return agent


def by_point(gap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{e['source']}/{e['point']}": e for e in gap["energy"]}


def test_gap_after_kill_states_cause_energy_and_raises_dark_alarm(tmp_path: Path, meter, agents) -> None:
    image, port = meter
    db = tmp_path / "buf.db"
    cfg = site_config(tmp_path, port, db)
    set_energy(image, 1000.0)

    agent = start(agents, tmp_path, cfg, "run1")
    wait_until("energy 1000 saved", lambda: saved_energy(db, 1000.0))
    agent.kill()
    assert gaps(db) == [], "a brand-new gateway has no gap before its first run"
    last_of_run1 = last_seq(db)

    # the gateway is dark (unplugged) while the site draws 840 kWh
    set_energy(image, 1840.0)
    agent = start(agents, tmp_path, cfg, "run2", boot="simulated-boot-2")  # unplugged: no stop record, new boot
    gap = wait_until("gap record", lambda: gaps(db))[0]
    assert gap["cause"] == "unplugged" and gap["previous_run"] == "unknown"
    starts = started_seqs(db)
    assert gap["to"]["seq"] == starts[-1], "'to' is this run's first record, its agent_started"
    assert gap["from"]["seq"] == last_of_run1, "'from' is the last record the killed run committed"
    assert gap["duration_s"] is not None and gap["duration_s"] >= 0
    points = by_point(gap)
    main = points["meter-main/energy_total"]
    assert main["before_kwh"] == pytest.approx(1000.0) and main["after_kwh"] == pytest.approx(1840.0)
    assert main["delta_kwh"] == pytest.approx(840.0)
    assert points["meter-main/energy_import"]["delta_kwh"] == pytest.approx(840.0)
    dead = points["meter-dead/e_total"]
    assert "delta_kwh" not in dead and "after_kwh" not in dead
    assert dead["unknown"].startswith("meter not answering"), dead
    alarms = wait_until("dark alarm", lambda: dark_alarms(db))
    assert len(alarms) == 1
    assert alarms[0]["delta_kwh"] == pytest.approx(840.0)
    assert alarms[0]["text"].startswith("gateway dark for ") and "840 kWh" in alarms[0]["text"]
    wait_until("energy 1840 saved", lambda: saved_energy(db, 1840.0))
    wait_until("gap record committed and the state told", lambda: gap_committed(db))
    agent.kill()

    # a crash with the site (almost) idle: 0.02 kWh is below the 0.05 kWh threshold
    set_energy(image, 1840.02)
    agent = start(agents, tmp_path, cfg, "run3", boot="simulated-boot-2")  # killed, same boot: a crash
    second = wait_until("second gap", lambda: gaps(db)[1:])[0]
    assert second["cause"] == "crash"
    assert by_point(second)["meter-main/energy_total"]["delta_kwh"] == pytest.approx(0.02, abs=1e-3)
    time.sleep(1.0)
    assert len(dark_alarms(db)) == 1, "no dark alarm below the threshold"
    assert agent.terminate() == 0

    # a clean stop
    agent = start(agents, tmp_path, cfg, "run4", boot="simulated-boot-2")
    third = wait_until("third gap", lambda: gaps(db)[2:])[0]
    assert third["cause"] == "clean_stop"
    assert third["from"]["seq"] < third["to"]["seq"]
    assert agent.terminate() == 0
    assert "Traceback" not in "".join((tmp_path / f"run{i}.log").read_text() for i in range(1, 5))


def test_a_gap_record_not_yet_committed_is_sent_again_by_the_next_start(tmp_path: Path, meter, agents) -> None:
    """The state forgets a gap only after its record is committed: a stop in between re-sends it."""
    image, port = meter
    db = tmp_path / "buf.db"
    cfg = site_config(tmp_path, port, db)
    set_energy(image, 10.0)
    agent = start(agents, tmp_path, cfg, "run1")
    wait_until("energy saved", lambda: saved_energy(db, 10.0))
    agent.kill()
    # a gap computed by run 2 whose record never reached the disk looks like this in the state file
    doc = state(db)
    lost = {
        "event": "gap",
        "cause": "crash",
        "gap_id": "lost-gap-1",
        "from": {"seq": 1, "ts": None},
        "to": {"seq": 2, "ts": None},
        "duration_s": None,
        "energy": [],
    }
    doc["pending_gap"] = {"_emitted": lost, "_alarm": None}
    db.with_name(db.name + ".continuity.json").write_text(json.dumps(doc))
    agent = start(agents, tmp_path, cfg, "run2")
    resent = wait_until("re-sent gap", lambda: [g for g in gaps(db) if g["gap_id"] == "lost-gap-1"])
    assert resent[0]["cause"] == "crash"
    wait_until("state cleared after the commit", lambda: gap_committed(db))
    assert agent.terminate() == 0
