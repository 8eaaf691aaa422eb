"""Uplink session against a real mosquitto: refusals typed by reason code, status that carries time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from agent.fleet.model import FleetState
from agent.uplink.errors import AuthRefused, ConnectionRefused, refusal
from agent.uplink.session import Will, connect, read_password
from buffer import verify
from config.spine import UplinkSettings
from tests.spine.helpers import chain_key
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, Message, MosquittoBroker
from tests.support.snapgen import snapshot_bytes

ROOT = "headframe/test-site/gw-test/"


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def statuses(msgs: list[Message]) -> list[dict]:
    return [m.json() for m in msgs if m.topic == ROOT + "status"]


def test_wrong_password_is_refused_by_reason_code(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b", users={"gw": "right"}).start()
    (tmp_path / "pw").write_text("wrong\n")
    cfg = UplinkSettings(host="127.0.0.1", port=broker.port, username="gw", password_file=tmp_path / "pw", connect_timeout=3.0)
    will = Will(ROOT + "status", b'{"status":"offline"}')

    async def attempt(password_file: Path) -> None:
        c = cfg.model_copy(update={"password_file": password_file})
        session = await connect(c, "auth-test", will, read_password(c))
        await session.end(ROOT + "status", b'{"status":"offline"}', 2.0)

    with pytest.raises(AuthRefused) as refused:
        asyncio.run(attempt(tmp_path / "pw"))
    # mosquitto answers MQTT 3.1.1 return code 4 or 5; paho reports them as 134 / 135
    assert refused.value.reason_code in (134, 135)
    assert refused.value.state == "auth_failed" and "wrong" not in str(refused.value)
    (tmp_path / "pw2").write_text("right\n")
    asyncio.run(attempt(tmp_path / "pw2"))  # the same path with the right password connects
    broker.stop()
    # the class follows the code, whatever the text says
    assert isinstance(refusal(135, "b:1", "anything at all"), AuthRefused)
    other = refusal(136, "b:1", "Not authorized")
    assert type(other) is ConnectionRefused and other.state == "backoff"


def test_will_after_sigkill_names_the_session(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "#"]).start()
    agent = AgentProcess(write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", health_interval="0.3s"))
    try:
        collector.wait_for(
            lambda ms: any(s["status"] == "online" for s in statuses(ms)) and any(m.topic == ROOT + "health/agent" for m in ms)
        )
    finally:
        agent.kill()
    msgs = collector.wait_for(lambda ms: statuses(ms)[-1]["status"] == "offline", timeout=15)
    online = [s for s in statuses(msgs) if s["status"] == "online"][-1]
    will = statuses(msgs)[-1]
    assert will["reason"] == "connection lost"
    assert will["session_started"] == online["session"]["started"]
    assert ts(will["last_seen_by_gateway"]) >= ts(will["session_started"])
    assert ts(online["since"]) >= ts(online["session"]["started"])
    # the fleet dates the outage from the gateway's last sign of life, not from when it read the will
    fleet = FleetState(clock=lambda: ts(online["since"]) + 3600)
    for m in msgs:
        fleet.on_message(m.topic, m.payload)
    gw = fleet.gateways["test-site/gw-test"]
    last_health = max(ts(m.json()["ts"]) for m in msgs if m.topic == ROOT + "health/agent")
    assert gw.status == "offline" and gw.since_is_last_seen and gw.status_since == pytest.approx(last_health)
    collector.stop()
    broker.stop()


def test_online_after_reconnect_reports_the_outage(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "status"]).start()
    agent = AgentProcess(write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db"))
    try:
        first = collector.wait_for(lambda ms: any(s["status"] == "online" for s in statuses(ms)))
        session1 = [s for s in statuses(first) if s["status"] == "online"][-1]
        assert session1["previous_session"]["lost_at"] is None and session1["previous_session"]["down_s"] is None
        broker.stop()
        asyncio.run(asyncio.sleep(1.5))
        broker.start()
        msgs = collector.wait_for(
            lambda ms: any(s["status"] == "online" and s["session"] != session1["session"] for s in statuses(ms)), timeout=30
        )
    finally:
        assert agent.terminate() == 0, agent.output()
    online = [s for s in statuses(msgs) if s["status"] == "online" and s["session"] != session1["session"]][-1]
    prev = online["previous_session"]
    assert prev["lost_at"] is not None and prev["reason"].startswith("connection lost")
    assert 1.0 <= prev["down_s"] < 30, prev
    assert ts(online["since"]) - ts(prev["lost_at"]) == pytest.approx(prev["down_s"], abs=0.01)
    assert prev["attempts"] >= 1 and "cannot reach broker" in prev["last_error"]
    collector.stop()
    broker.stop()


def test_attachments_go_out_base64_in_their_entries(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "alarm/#"]).start()
    agent = AgentProcess(
        write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db"),
        env={"HEADFRAME_EXTRA_PRODUCERS": "tests.support.snapgen", "SNAPGEN_COUNT": "3"},
    )
    try:
        msgs = collector.wait_for(lambda ms: len({m.json()["payload"]["n"] for m in ms}) == 3)
    finally:
        assert agent.terminate() == 0, agent.output()
    for m in msgs:
        assert m.topic == ROOT + "alarm/snap"
        doc = m.json()
        key = chain_key(tmp_path / "buf.db")
        assert list(doc)[-1] == "chain" and verify([doc], key) == []  # the data is not part of the chain
        for part, att in enumerate(doc["attachments"]):
            data = base64.b64decode(att["data"], validate=True)
            assert data == snapshot_bytes(doc["payload"]["n"], part)
            assert list(att) == ["content_type", "name", "sha256", "size", "data"]
            assert att["size"] == len(data) and att["sha256"] == hashlib.sha256(data).hexdigest()
    collector.stop()
    broker.stop()


def test_a_link_down_since_start_and_across_a_reload_leaves_a_gap_record(tmp_path: Path) -> None:
    """The broker is unreachable when the agent starts and during a reload that changes the uplink:
    the outage is one link_down gap from the agent's start to the first connection."""
    import signal
    import time

    broker = MosquittoBroker(tmp_path / "b").start()
    # a persistent subscription made now gets what the agent publishes the moment it reconnects later
    collector = Collector(broker, topics=[ROOT + "event/agent"], client_id="gap-watch").start()
    broker.stop()  # the link is down from before the agent starts
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db")
    t0 = time.time()
    agent = AgentProcess(cfg)
    try:
        time.sleep(2.0)
        reloaded_at = time.time()
        text = cfg.read_text().replace('"keepalive": 5', '"keepalive": 6')
        assert text != cfg.read_text()
        cfg.write_text(text)
        agent.signal(signal.SIGHUP)  # uplink settings changed: a new uplink, while still down
        time.sleep(1.5)
        broker.start()
        msgs = collector.wait_for(lambda ms: any(m.json()["payload"].get("cause") == "link_down" for m in ms), timeout=30)
    finally:
        assert agent.terminate() == 0, agent.output()
    gap = next(m.json()["payload"] for m in msgs if m.json()["payload"].get("cause") == "link_down")
    # the outage runs from the agent's start, not from the reload 2 s later
    assert t0 <= ts(gap["from"]["ts"]) < reloaded_at - 0.5, (gap, t0, reloaded_at)
    assert gap["duration_s"] >= 2.0, gap
    collector.stop()
    broker.stop()
