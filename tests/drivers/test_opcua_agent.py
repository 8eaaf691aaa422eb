"""OPC UA through the real agent (``headframe run``) into the durable buffer, beside Modbus;
and a gateway without OPC UA devices never loads asyncua."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.opcua_server import OpcUaServer
from tests.support.wait import wait_until


def stored(db: Path, source: str) -> list[dict[str, Any]]:
    """Telemetry values of ``source`` as committed to the buffer, oldest first."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT body FROM records WHERE source = ? ORDER BY seq", (source,)).fetchall()
    except sqlite3.OperationalError:  # the agent has not created its schema yet
        return []
    finally:
        con.close()
    docs = [orjson.loads(r[0]) for r in rows]
    return [d["payload"]["values"] for d in docs if d["kind"] == "telemetry"]


def latest(db: Path, source: str, point: str) -> dict[str, Any] | None:
    seen = [v[point] for v in stored(db, source) if point in v]
    return seen[-1] if seen else None


def test_opcua_values_reach_the_buffer_beside_modbus_while_another_opcua_server_is_down(tcp_slave, tmp_path: Path) -> None:
    """Then the server process is replaced (a real restart: a new server, new address space,
    same port): the agent's values resume without a crash."""
    image, modbus_port = tcp_slave
    image.set_float("input", 52, 75000.0)
    port = free_port()
    srv, after = OpcUaServer(port, {"Speed": 1.5, "Run": True}), OpcUaServer(port, {"Speed": 3.5, "Run": True})
    servers = [srv, after]
    booting = threading.Thread(target=after.prepare)  # the replacement builds its address space meanwhile
    dead_endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    db = tmp_path / "buf.db"
    opcua_points = [
        {"name": "speed", "node": "ns=2;s=Speed", "unit": "m/s"},
        {"name": "run", "node": "ns=2;s=Run"},
        # bad from the start ("cannot connect"), then bad for its own reason: report-on-change compares
        # quality, so the new reason goes out at max_silent (kept short here)
        {"name": "ghost", "node": "ns=2;s=Hoist.Ghost", "max_silent": "0.5s"},
    ]
    cfg = write_config(
        tmp_path / "c.yaml",
        free_port(),  # no broker: the buffer keeps everything
        buffer_path=db,
        extra={
            "devices": [
                {"id": "plc-line1", "protocol": "opcua", "endpoint": srv.endpoint, "publishing_interval": "100ms",
                 "timeout": "1s", "backoff_interval": "0.5s", "points": opcua_points},
                {"id": "plc-dead", "protocol": "opcua", "endpoint": dead_endpoint, "timeout": "1s",
                 "points": [{"name": "speed", "node": "ns=2;s=Speed"}]},
                {"id": "meter-main", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": modbus_port,
                 "profile": "eastron_sdm630", "groups": [{"name": "default", "interval": "0.2s"}]},
            ]
        },
    )  # fmt: skip
    agent = AgentProcess(cfg)  # before the server is up: it starts while servers build their address spaces
    booting.start()
    try:
        srv.start()
        good = lambda: (latest(db, "plc-line1", "speed") or {}).get("q") == "good" and latest(db, "plc-line1", "speed")  # noqa: E731
        first = wait_until("OPC UA values stored", good, timeout=30)
        assert first["v"] == 1.5 and first["q"] == "good" and first["unit"] == "m/s"
        wait_until("the unknown node named", lambda: "BadNodeIdUnknown" in str(latest(db, "plc-line1", "ghost")))
        ghost = latest(db, "plc-line1", "ghost")
        assert ghost is not None and ghost["q"] == "bad" and "ns=2;s=Hoist.Ghost: BadNodeIdUnknown" in ghost["reason"]
        srv.set("Speed", 2.25)
        wait_until("the data change stored", lambda: (latest(db, "plc-line1", "speed") or {}).get("v") == 2.25, timeout=15)
        wait_until("Modbus values stored alongside", lambda: latest(db, "meter-main", "p_total"), timeout=15)
        dead = wait_until("the dead server's points bad", lambda: latest(db, "plc-dead", "speed"), timeout=15)
        assert dead["q"] == "bad" and "connection refused" in dead["reason"] and dead_endpoint in dead["reason"]
        srv.stop()
        wait_until("bad while the server is gone", lambda: latest(db, "plc-line1", "speed")["q"] == "bad", timeout=15)
        booting.join(60)
        after.listen()
        wait_until("values after the restart", lambda: latest(db, "plc-line1", "speed")["v"] == 3.5, timeout=20)
        after.set("Speed", 4.5)
        wait_until("changes pushed again", lambda: latest(db, "plc-line1", "speed")["v"] == 4.5, timeout=15)
    finally:
        code = agent.terminate()
        booting.join(60)
        for s in servers:
            s.stop()
    assert code == 0, agent.output()
    out = agent.output()
    assert "plc-dead: starting -> offline (cannot connect to " in out
    assert "Traceback" not in out, out


def test_a_gateway_without_opcua_devices_never_imports_asyncua() -> None:
    """The extra stays optional: the CLI, the daemon and a Modbus-only drivers producer load no asyncua."""
    code = (
        "import sys\n"
        "from agent.cli import build_parser\n"
        "import agent.daemon\n"
        "from buffer.sink import ListSink\n"
        "from config import load_settings\n"
        "from drivers.runtime import build\n"
        "build_parser()\n"
        "drivers = build(load_settings('config/examples/drivers.yaml'), ListSink())\n"
        "assert drivers is not None and len(drivers.pollers) == 4\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'asyncua' or m.startswith('drivers.opcua'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_without_the_opcua_extra_an_opcua_device_says_how_to_install_it_and_the_others_run() -> None:
    """asyncua hidden from this interpreter (as on a default install): the OPC UA device is bad
    with the fix in its reason; the Modbus devices of the same producer are built and polled."""
    code = (
        "import asyncio, sys\n"
        "sys.modules['asyncua'] = None  # not installed\n"
        "from buffer.sink import ListSink\n"
        "from config import load_settings_text\n"
        "from drivers.runtime import build\n"
        "text = '''gateway: {site: s, id: g}\ndevices:\n"
        "  - {id: meter, protocol: modbus_tcp, host: 127.0.0.1, profile: eastron_sdm630}\n"
        "  - {id: plc-ua, protocol: opcua, endpoint: 'opc.tcp://127.0.0.1:1', points: [{name: s, node: 'ns=2;s=S'}]}\n"
        "'''\n"
        "sink = ListSink()\n"
        "drivers = build(load_settings_text(text, 'x.yaml'), sink)\n"
        "poller = {p.dev.id: p for p in drivers.pollers}['plc-ua']\n"
        "asyncio.run(poller.poll('default'))\n"
        "print(len(drivers.pollers), poller.state['s'].reason)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "2 the OPC UA library is not installed: pip install 'headframe[opcua]' (asyncua)"
