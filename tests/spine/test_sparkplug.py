"""Sparkplug B output end to end: the real agent, a real pymodbus device, a real mosquitto, and a
host application that decodes with an independent Sparkplug implementation (pysparkplug).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import pytest

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.spine.helpers import buffered_payloads
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker, free_port, wait_port
from tests.support.sparkplug_host import NodeView, ncmd_metric, ncmd_rebirth, view
from tests.support.wait import wait_until

GROUP, NODE, DEVICE = "plant-7", "gw-test", "plc-hoist"
TELEMETRY = 2


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker").start()
    yield b
    b.stop()


class Plc:
    """A real pymodbus server that can stop answering and come back on the same port."""

    def __init__(self) -> None:
        self.image = RegisterImage(size=64)
        self.image.set_float("holding", 0, 12.5)
        self.image.set_registers("holding", 10, [7])
        self.image.set_bits("coil", 0, [True])
        self.port = free_port()
        self.server: ServerThread | None = None

    def start(self) -> Plc:
        self.server = ServerThread({1: self.image}, tcp_port=self.port).start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def plc() -> Iterator[Plc]:
    p = Plc().start()
    yield p
    p.stop()


def config(tmp_path: Path, broker: MosquittoBroker, plc_port: int, name: str = "c") -> Path:
    extra: dict[str, Any] = {
        "devices": [
            {
                "id": DEVICE,
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": plc_port,
                "timeout": "0.3s",
                "retries": 0,
                "backoff_after": 1,
                "backoff_interval": "0.5s",
                "groups": [{"name": "default", "interval": "0.2s"}],
                "points": [
                    {"name": "p_total", "address": 0, "type": "float32", "unit": "kW"},
                    {"name": "level", "address": 10, "type": "int16"},
                    {"name": "running", "table": "coil", "address": 0, "type": "bool"},
                ],
            }
        ]
    }
    return write_config(
        tmp_path / f"{name}.yaml",
        broker.port,
        buffer_path=tmp_path / "buf.db",
        extra=extra,
        health_interval="30s",
        format="sparkplug",
        sparkplug={"group_id": GROUP},
    )


def host(broker: MosquittoBroker, name: str = "host") -> Collector:
    return Collector(broker, topics=["spBv1.0/#", "headframe/#"], client_id=name).start()


def sp(col: Collector) -> NodeView:
    return view([m for m in col.snapshot() if m.topic.startswith("spBv1.0/")], GROUP, NODE)


def ncmd(broker: MosquittoBroker, payload: bytes) -> None:
    mqtt_publish.single(f"spBv1.0/{GROUP}/NCMD/{NODE}", payload, qos=1, hostname=broker.host, port=broker.port)


def until(predicate: Callable[[], Any], *, what: str, timeout: float = 20.0) -> Any:
    return wait_until(what, predicate, timeout)


def births(v: NodeView) -> list[str]:
    return [f"{k}:{d}" if d else k for k, d, _ in v.events if k in ("NBIRTH", "DBIRTH", "NDEATH", "DDEATH")]


def test_births_aliases_values_seq_and_rebirth_on_ncmd(tmp_path: Path, broker, plc, agents) -> None:
    image = plc.image
    col = host(broker)
    agent = AgentProcess(config(tmp_path, broker, plc.port))
    agents.append(agent)
    until(lambda: 12.5 in sp(col).values(DEVICE, "p_total"), timeout=15, what="first DDATA with p_total")
    v = sp(col)
    assert not v.problems, v.problems
    assert births(v)[:2] == ["NBIRTH", f"DBIRTH:{DEVICE}"]
    by_name = {name: dt.name for name, dt in v.births[DEVICE].values()}
    assert by_name == {"p_total": "DOUBLE", "level": "DOUBLE", "running": "BOOLEAN"}
    assert v.values(DEVICE, "level")[0] == 7 and v.values(DEVICE, "running")[0] is True
    assert all(r.quality is None for r in v.readings)  # good: no Quality property

    image.set_float("holding", 0, 42.25)
    image.set_registers("holding", 10, [65535 - 2])  # int16 -3
    until(lambda: -3 in sp(col).values(DEVICE, "level"), timeout=10, what="changed registers in DDATA")
    assert 42.25 in sp(col).values(DEVICE, "p_total")

    # events stay on the plain JSON topics (nothing captured is dropped)
    assert any(m.topic == f"headframe/test-site/{NODE}/event/agent" for m in col.snapshot())

    # a host's rebirth request: NBIRTH (same bdSeq, seq 0) and the device's DBIRTH again
    ncmd(broker, ncmd_rebirth())
    until(lambda: births(sp(col)).count("NBIRTH") == 2, timeout=10, what="NBIRTH after NCMD rebirth")
    until(lambda: sp(col).birth_counts.get(DEVICE) == 2, timeout=10, what="DBIRTH after NCMD rebirth")
    v = sp(col)
    assert v.nbirth_bdseqs[0] == v.nbirth_bdseqs[1]
    # bad commands are ignored with a clear line and the node goes on
    ncmd(broker, b"\x07garbage\xff")
    ncmd(broker, ncmd_metric("Node Control/Reboot", 1.0))
    ncmd(broker, ncmd_rebirth(False))
    until(lambda: "sparkplug: ignored an NCMD that is not a Sparkplug B payload" in agent.output(), what="log line")
    until(lambda: "ignored NCMD metric 'Node Control/Reboot': this edge node accepts only" in agent.output(), what="log line")
    image.set_float("holding", 0, 99.5)
    until(lambda: 99.5 in sp(col).values(DEVICE, "p_total"), timeout=10, what="DDATA after bad NCMDs")
    v = sp(col)
    assert births(v).count("NBIRTH") == 2, births(v)
    assert not v.problems, v.problems
    assert agent.proc.poll() is None
    col.stop()


def test_ndeath_will_carries_the_bdseq_of_the_last_nbirth(tmp_path: Path, broker, plc, agents) -> None:
    col = host(broker)
    cfg = config(tmp_path, broker, plc.port)
    first = AgentProcess(cfg, log=tmp_path / "first.log")
    agents.append(first)
    until(lambda: sp(col).readings, timeout=15, what="first DDATA")
    first.signal(signal.SIGTERM)  # a clean stop sends the NDEATH itself (DISCONNECT drops the will)
    until(lambda: sp(col).ndeath_bdseqs, timeout=15, what="NDEATH at clean stop")
    first.proc.wait(15)

    second = AgentProcess(cfg, log=tmp_path / "second.log")  # a restart takes the next bdSeq
    agents.append(second)
    until(lambda: len(sp(col).nbirth_bdseqs) == 2 and sp(col).readings[-1:], timeout=15, what="second session")
    second.kill()  # the connection dies without DISCONNECT: the broker publishes the will
    until(lambda: len(sp(col).ndeath_bdseqs) == 2, timeout=15, what="NDEATH as the will")
    v = sp(col)
    assert v.nbirth_bdseqs[1] == (v.nbirth_bdseqs[0] + 1) % 256
    assert v.ndeath_bdseqs == v.nbirth_bdseqs  # each NDEATH names the NBIRTH of its own session
    assert not any(m.retain for m in col.snapshot() if "/NDEATH/" in m.topic)
    assert not v.problems, v.problems
    col.stop()


def test_broker_outage_loses_nothing_and_dead_device_gets_ddeath(tmp_path: Path, broker, plc, agents) -> None:
    image = plc.image
    col = host(broker)
    db = tmp_path / "buf.db"
    agent = AgentProcess(config(tmp_path, broker, plc.port))
    agents.append(agent)
    until(lambda: 12.5 in sp(col).values(DEVICE, "p_total"), timeout=15, what="first DDATA")
    col.stop()
    broker.stop()
    during = [101.5, 102.5, 103.5]
    for value in during:  # each value captured (committed to the buffer) while the broker is down
        image.set_float("holding", 0, value)
        until(
            lambda value=value: any(p["values"].get("p_total", {}).get("v") == value for p in buffered_payloads(db, TELEMETRY)),
            timeout=10,
            what=f"{value} in the buffer",
        )
    broker.start()
    col = host(broker)
    until(lambda: set(during) <= set(sp(col).values(DEVICE, "p_total")), timeout=20, what="outage values delivered")
    v = sp(col)
    assert not v.problems, v.problems
    kinds = [k for k, _, _ in v.events]  # this host's view starts with the broker's restart
    birth = kinds.index("NBIRTH")  # the session after the outage starts with births
    assert kinds[birth + 1] == "DBIRTH" and "DDATA" not in kinds[:birth]

    # the device stops answering: DDEATH; its bad readings go to the JSON topic, nothing is dropped
    seen = len(col.snapshot())
    plc.stop()
    until(lambda: ("DDEATH", DEVICE) in [(k, d) for k, d, _ in sp(col).events], timeout=15, what="DDEATH")
    json_topic = f"headframe/test-site/{NODE}/telemetry/{DEVICE}"
    until(lambda: any(m.topic == json_topic for m in col.snapshot()[seen:]), timeout=10, what="dead device's readings")
    bad = [m.json()["payload"]["values"] for m in col.snapshot()[seen:] if m.topic == json_topic]
    assert all(e["q"] != "good" for vals in bad for e in vals.values())
    # it answers again: DBIRTH before its next DDATA
    image.set_float("holding", 0, 7.75)
    plc.start()
    until(lambda: 7.75 in sp(col).values(DEVICE, "p_total"), timeout=15, what="DDATA after the device came back")
    v = sp(col)
    death = max(i for i, (k, d, _) in enumerate(v.events) if k == "DDEATH")
    assert ("DBIRTH", DEVICE) in [(k, d) for k, d, _ in v.events[death:]]
    assert not v.problems, v.problems
    col.stop()


def state_msg(broker: MosquittoBroker, online: bool, ts: int) -> None:
    """The primary host's retained STATE, as a Sparkplug 3.0 host publishes it."""
    body = json.dumps({"online": online, "timestamp": ts}).encode()
    mqtt_publish.single("spBv1.0/STATE/scada-1", body, qos=1, retain=True, hostname=broker.host, port=broker.port)


def test_primary_host_offline_holds_readings_in_the_buffer_until_it_is_back(tmp_path: Path, broker, plc, agents) -> None:
    state_msg(broker, False, 1000)
    col = host(broker)
    cfg = config(tmp_path, broker, plc.port)
    doc = json.loads(cfg.read_text())
    doc["uplink"]["sparkplug"]["primary_host_id"] = "scada-1"
    cfg.write_text(json.dumps(doc))
    agent = AgentProcess(cfg)
    agents.append(agent)
    db = tmp_path / "buf.db"
    until(lambda: "waiting for primary host scada-1" in agent.output(), what="the node waits for the host")
    plc.image.set_float("holding", 0, 55.5)
    until(
        lambda: any(p["values"].get("p_total", {}).get("v") == 55.5 for p in buffered_payloads(db, TELEMETRY)),
        what="55.5 held in the buffer",
    )
    ncmd(broker, ncmd_rebirth())  # a rebirth request while the primary host is offline: no births
    until(lambda: "a rebirth request while primary host scada-1 is offline" in agent.output(), what="log line")
    assert not sp(col).events  # nothing Sparkplug while the host is offline
    state_msg(broker, True, 2000)
    until(lambda: 55.5 in sp(col).values(DEVICE, "p_total"), what="held readings after the host came online")
    v = sp(col)
    assert births(v)[:2] == ["NBIRTH", f"DBIRTH:{DEVICE}"] and not v.problems, (births(v), v.problems)

    state_msg(broker, False, 1500)  # a stale STATE (older timestamp than the last) changes nothing
    plc.image.set_float("holding", 0, 66.5)
    until(lambda: 66.5 in sp(col).values(DEVICE, "p_total"), what="readings go on after a stale STATE")
    assert not sp(col).ndeath_bdseqs
    state_msg(broker, False, 3000)  # the host goes offline: the node disconnects, the broker sends its NDEATH
    until(lambda: sp(col).ndeath_bdseqs, what="NDEATH after the host went offline")
    assert sp(col).ndeath_bdseqs == sp(col).nbirth_bdseqs
    state_msg(broker, True, 4000)
    until(lambda: len(sp(col).nbirth_bdseqs) == 2, what="NBIRTH after the host is back")
    v = sp(col)
    assert v.nbirth_bdseqs[1] != v.nbirth_bdseqs[0] and not v.problems, v.problems
    col.stop()
