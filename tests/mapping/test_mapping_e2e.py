"""The real agent, a real mosquitto and a real Modbus server: a subscriber receives the mapped
topics and payloads (one message per point), in order, and a broker outage loses nothing."""

from __future__ import annotations

import re
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.spine.helpers import buffer_state
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker, free_port, wait_port
from tests.support.wait import wait_until

MAPPING = {
    "timezone": "Asia/Shanghai",
    "static": {"mine_code": "370802001"},
    "tables": {"device_code": {"pump-station": "PS0001", "*": "GW0001"}, "quality_code": {"good": 0, "bad": 1, "stale": 2}},
    "telemetry": {
        "split": "point",
        "topic": "mine/${static.mine_code}/${tables.device_code[source]}/${point.name}",
        "payload": {
            "mineCode": "${static.mine_code}",
            "tag": "${tables.device_code[source]}_${point.name}",
            "value": "${point.value}",
            "state": "${tables.quality_code[point.quality]}",
            "time": "${ts_local}",
            "seq": "${seq}",
            "chain": "${chain}",
        },
    },
}
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture
def slave() -> Iterator[tuple[RegisterImage, int]]:
    image, port = RegisterImage(), free_port()
    server = ServerThread({1: image}, tcp_port=port).start()
    wait_port(port)
    yield image, port
    server.stop()


def set_step(image: RegisterImage, k: int) -> None:
    """level = 1.5 k and count = k in one atomic write: one poll sees both change."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", 1.5 * k))
    image.set_registers("input", 0, [hi, lo, k])


def buffered_counts(db: Path) -> list[int]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        rows = con.execute("SELECT body FROM records WHERE source = 'pump-station'").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()
    return [orjson.loads(r[0])["payload"]["values"].get("count", {}).get("v") for r in rows]


def test_mapped_topics_in_order_through_a_broker_outage(
    tmp_path: Path, slave: tuple[RegisterImage, int], agents: list[AgentProcess]
) -> None:
    image, mb_port = slave
    broker = MosquittoBroker(tmp_path / "broker").start()
    collector = Collector(broker, client_id="platform").start()
    db = tmp_path / "buf.db"
    device = {
        "id": "pump-station",
        "protocol": "modbus_tcp",
        "host": "127.0.0.1",
        "port": mb_port,
        "groups": [{"name": "default", "interval": "0.1s"}],
        "points": [
            {"name": "level", "table": "input", "address": 0, "type": "float32", "unit": "m"},
            {"name": "count", "table": "input", "address": 2, "type": "uint16"},
        ],
    }
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=db, extra={"devices": [device]}, mapping=MAPPING)
    agent = AgentProcess(cfg)
    agents.append(agent)

    def mapped(name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(m.topic, m.json()) for m in collector.snapshot() if m.topic == f"mine/370802001/PS0001/{name}"]

    for k in (1, 2, 3):
        set_step(image, k)
        wait_until(f"count {k} mapped", lambda k=k: any(p["value"] == k for _, p in mapped("count")), timeout=30)
    broker.stop()
    for k in range(4, 9):  # polled and committed while the platform's broker is gone
        set_step(image, k)
        wait_until(f"count {k} buffered", lambda k=k: k in buffered_counts(db), timeout=30)
    broker.start()
    wait_until("count 8 mapped after the outage", lambda: any(p["value"] == 8 for _, p in mapped("count")), timeout=40)

    # nothing lost: every committed seq was delivered (mapped or plain JSON) or is still buffered
    def delivered() -> set[int]:
        seqs = set()
        for m in collector.snapshot():
            if m.topic.endswith("/status"):
                continue
            seqs.add(m.json()["seq"])
        return seqs

    def all_accounted() -> bool:
        last, pending = buffer_state(db)
        return last > 0 and set(range(1, last + 1)) - pending <= delivered() and not pending

    try:
        wait_until("every committed record delivered", all_accounted, timeout=30)
    except AssertionError:
        last, pending = buffer_state(db)
        missing = sorted(set(range(1, last + 1)) - pending - delivered())
        raise AssertionError(
            f"last seq {last}; still buffered {sorted(pending)[:20]}; missing {missing[:20]}\n{agent.output()[-4000:]}"
        ) from None
    assert agent.terminate() == 0, agent.output()

    counts = mapped("count")
    first: dict[int, int] = {}
    for _, p in counts:
        first.setdefault(p["seq"], p["value"])
    in_order = [first[s] for s in sorted(first)]
    assert in_order == sorted(in_order) and set(range(1, 9)) <= set(in_order), in_order
    # one message per point: every mapped record's seq has both points, level = 1.5 x count
    levels = {p["seq"]: p["value"] for _, p in mapped("level")}
    for seq, value in first.items():
        if value:
            assert levels[seq] == pytest.approx(1.5 * value), (seq, levels)
    for _, p in counts:
        assert p["mineCode"] == "370802001" and p["tag"] == "PS0001_count" and p["state"] == 0
        assert LOCAL_TIME.match(p["time"]) and len(p["chain"]) == 64
    # the rest (health, events) stays on the documented default topics, chained JSON
    plain = [m for m in collector.snapshot() if m.topic.startswith("headframe/test-site/gw-test/health/")]
    assert plain and plain[-1].json()["payload"]["uplink"]["mapping"]["fallback"] == 0
    assert plain[-1].json()["payload"]["uplink"]["mapping"]["mapped"] > 0
    assert not [m for m in collector.snapshot() if m.topic.startswith("headframe/test-site/gw-test/telemetry/")]
    collector.stop()
