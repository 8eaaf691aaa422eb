"""S7 values through the real agent (``headframe run``) into the durable buffer, beside a dead PLC."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.s7plc import S7Plc
from tests.support.wait import wait_until


def stored(db: Path, source: str) -> list[dict[str, Any]]:
    """Payloads the agent committed for ``source``, oldest first."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT body FROM records WHERE source = ? ORDER BY seq", (source,)).fetchall()
    except sqlite3.OperationalError:  # the agent has not created its schema yet
        return []
    finally:
        con.close()
    return [orjson.loads(r[0])["payload"] for r in rows]


def test_s7_values_reach_the_buffer_and_a_dead_plc_does_not_stop_them(tmp_path: Path) -> None:
    plc = S7Plc({("DB", 10): 16, ("M", 0): 4}).start()
    plc.pack("DB", 10, 8, ">f", 1.5)
    plc.write("M", 0, 0, b"\x01")
    dead_port = free_port()
    db = tmp_path / "buf.db"
    fast = [{"name": "default", "interval": "0.2s"}]
    cfg = write_config(
        tmp_path / "c.yaml",
        free_port(),  # no broker: the values wait in the buffer
        buffer_path=db,
        extra={
            "devices": [
                {
                    "id": "hoist-plc",
                    "protocol": "s7",
                    "host": "127.0.0.1",
                    "port": plc.port,
                    "groups": fast,
                    "points": [
                        {"name": "speed", "address": "DB10.DBD8", "type": "REAL", "unit": "m/s"},
                        {"name": "running", "address": "M0.0"},
                    ],
                },
                {
                    "id": "dead-plc",
                    "protocol": "s7",
                    "host": "127.0.0.1",
                    "port": dead_port,
                    "groups": fast,
                    "points": [{"name": "x", "address": "MW0", "type": "INT"}],
                },
            ]
        },
    )

    def speeds() -> list[float]:
        return [p["values"]["speed"]["v"] for p in stored(db, "hoist-plc") if "speed" in p.get("values", {})]

    agent = AgentProcess(cfg)
    try:
        wait_until("the first S7 reading stored", speeds, timeout=30)
        plc.pack("DB", 10, 8, ">f", 2.75)
        wait_until("the changed S7 reading stored", lambda: speeds()[-1] == 2.75, timeout=30)
        dead = wait_until(
            "the dead PLC's state stored", lambda: [p for p in stored(db, "dead-plc") if p.get("event") == "device_state"]
        )
    finally:
        code = agent.terminate()
        plc.stop()
    assert code == 0, agent.output()
    first = next(p for p in stored(db, "hoist-plc") if "speed" in p.get("values", {}))
    assert first["values"] == {"speed": {"v": 1.5, "q": "good", "unit": "m/s"}, "running": {"v": True, "q": "good"}}
    assert f"127.0.0.1:{dead_port} refused the connection" in dead[0]["reason"]
