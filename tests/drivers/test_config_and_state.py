"""Driver config errors name key and line; polling while the broker is down.

The operating state (power sum) moved to rules/: tests/rules/test_opstate.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from config import ConfigError, load_settings_text
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.wait import wait_until

HEAD = "gateway: {site: s, id: g}\n"


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            HEAD + "buses:\n  - {name: a, port: /dev/ttyS0, baudrate: 9600}\n  - {name: b, port: /dev/ttyS0, baudrate: 2400}\n",
            4,
            "buses[1].port",
            "different settings",
        ),
        (
            HEAD + "devices:\n  - {id: m, protocol: modbus_rtu, bus: nope, profile: eastron_sdm630}\n",
            3,
            "devices[0].bus",
            "buses",
        ),
        (HEAD + "devices:\n  - {id: m, protocol: modbus_tcp, profile: eastron_sdm630}\n", 3, "devices[0]", "host"),
        (
            HEAD + "devices:\n  - {id: m, protocol: modbus_tcp, host: h, profile: sdm999}\n",
            3,
            "devices[0].profile",
            "eastron_sdm630",
        ),
        (
            HEAD + "devices:\n  - id: m\n    protocol: modbus_tcp\n    host: h\n    points:\n"
            "      - {name: x, address: 1, type: flaot32}\n",
            7,
            "devices[0].points[0].type",
            "float32",
        ),
        (
            HEAD + "devices:\n  - id: m\n    protocol: modbus_tcp\n    host: h\n    points:\n      - {name: x, type: bit}\n",
            7,
            "devices[0].points[0]",
            "bit",
        ),
        (
            HEAD + "buses: [{name: b, port: /dev/x}]\ndevices:\n"
            "  - {id: m, protocol: dlt645, bus: b, address: '12', profile: dlt645_three_phase}\n",
            4,
            "devices[0]",
            "12-digit",
        ),
        (
            HEAD + "operating_state: {enabled: true, power_points: [ghost.p_total]}\n",
            2,
            "operating_state.power_points[0]",
            "device.point",
        ),
        (HEAD + "operating_state: {on_above_kw: 10, off_below_kw: 20}\n", 2, "operating_state", "hysteresis"),
        # one model per protocol: a key of another protocol is named at its own line, with where it belongs
        (
            HEAD + "buses: [{name: b, port: /dev/x}]\ndevices:\n  - id: m\n    protocol: modbus_tcp\n    host: h\n"
            "    bus: b\n    profile: eastron_sdm630\n",
            7,
            "devices[0].bus",
            "no 'bus' on a modbus_tcp device",
        ),
        (
            HEAD + "buses: [{name: b, port: /dev/x}]\ndevices:\n  - id: m\n    protocol: dlt645\n    bus: b\n"
            "    address: '000000123456'\n    unit: 3\n    profile: dlt645_three_phase\n",
            8,
            "devices[0].unit",
            "a meter has a 12-digit 'address'",
        ),
        (HEAD + "devices:\n  - id: m\n    protocol: modbus_tpc\n    host: h\n", 4, "devices[0].protocol", "'modbus_tcp'"),
        (HEAD + "devices:\n  - id: m\n    host: h\n    profile: eastron_sdm630\n", 3, "devices[0].protocol", "missing"),
        (
            HEAD + "devices:\n  - {id: m, protocol: modbus_tcp, host: h, profile: dlt645_three_phase}\n",
            3,
            "devices[0].profile",
            "a profile for modbus_tcp devices",
        ),
    ],
)
def test_driver_config_errors(text: str, line: int, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    hit = [m for m in msgs if m.startswith(f"site.yaml:{line}:") and f" {key}:" in m]
    assert hit, msgs
    assert words in hit[0]


def test_polling_goes_on_while_the_broker_is_down(tcp_slave, tmp_path: Path) -> None:
    image, port = tcp_slave
    image.set_float("input", 52, 75000.0)
    db = tmp_path / "buf.db"
    cfg = write_config(
        tmp_path / "c.yaml",
        free_port(),
        buffer_path=db,
        extra={
            "devices": [
                {
                    "id": "meter-main",
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": port,
                    "profile": "eastron_sdm630",
                    "groups": [{"name": "default", "interval": "0.2s"}],
                }
            ]
        },
    )

    def totals() -> list[float]:
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT body FROM records WHERE source = 'meter-main' ORDER BY seq").fetchall()
        except sqlite3.OperationalError:  # the agent has not created its schema yet
            return []
        finally:
            con.close()
        docs = [orjson.loads(r[0]) for r in rows]
        return [d["payload"]["values"]["p_total"]["v"] for d in docs if "p_total" in d["payload"].get("values", {})]

    agent = AgentProcess(cfg)
    try:
        # wait on what was stored, not on a fixed time: a loaded machine starts the agent slower
        wait_until("the first reading stored", totals, timeout=30)
        image.set_float("input", 52, 91000.0)
        wait_until("the changed reading stored", lambda: totals()[-1] == pytest.approx(91.0), timeout=30)
    finally:
        assert agent.terminate() == 0, agent.output()
    stored = totals()
    assert stored[0] == pytest.approx(75.0) and stored[-1] == pytest.approx(91.0)
    assert "backoff" in agent.output() or "cannot reach broker" in agent.output()
