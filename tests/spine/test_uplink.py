"""The agent as a real process against a real mosquitto: delivery, auth, TLS, outages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buffer import verify
from tests.spine.helpers import buffer_state, buffered_payloads, chain_key, first_delivery_order_ok
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker
from tests.support.certs import make_tls_files

LOAD = {"HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen", "LOADGEN_RATE": "300", "LOADGEN_SOURCES": "3"}
ROOT = "headframe/test-site/gw-test/"


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def delivered_all(collector: Collector, db: Path, timeout: float = 30.0) -> list[dict]:
    """Every committed seq that left the buffer reached the broker at least once."""
    last, pending = buffer_state(db)
    expected = set(range(1, last + 1)) - pending
    return collector.wait_for_seqs(expected, timeout)


def test_end_to_end_with_password_auth(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b", users={"gw": "s3cret", "ops": "ops"}).start()
    collector = Collector(broker, username="ops", password="ops").start()
    (tmp_path / "pw").write_text("s3cret\n")
    cfg = write_config(
        tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", username="gw", password_file=str(tmp_path / "pw")
    )
    agent = AgentProcess(cfg, env=LOAD)
    try:
        collector.wait_for(
            lambda ms: (
                sum(m.topic.startswith(ROOT + "alarm/") for m in ms) >= 3
                and sum(m.topic == ROOT + "health/agent" for m in ms) >= 2
            )
        )
    finally:
        assert agent.terminate() == 0, agent.output()
    records = delivered_all(collector, tmp_path / "buf.db")
    msgs = collector.snapshot()
    topics = {m.topic for m in msgs}
    assert {
        ROOT + "telemetry/load-0",
        ROOT + "alarm/load-0",
        ROOT + "health/agent",
        ROOT + "event/agent",
        ROOT + "status",
    } <= topics
    status = [m for m in msgs if m.topic == ROOT + "status"]
    assert status[0].json()["status"] == "online"
    assert status[-1].json()["status"] == "offline" and status[-1].json()["reason"] == "shutdown"
    for m in msgs:
        if m.topic.endswith("/status"):
            continue
        doc = m.json()
        assert m.topic == f"{ROOT}{doc['kind']}/{doc['source']}"
        assert {"gateway", "site", "seq", "ts", "synced", "source", "kind", "payload", "prev", "chain"} <= doc.keys()
        assert doc["gateway"] == "gw-test" and doc["ts"].endswith("Z")
    health = [r for r in records if r["kind"] == "health"][-1]["payload"]
    assert health["schema"] == "headframe.health/1" and health["uplink"]["state"] == "connected"
    key = chain_key(tmp_path / "buf.db")
    assert verify(records, key) == []  # the whole delivered stream is one unbroken chain, keyed by default
    assert verify(records) != []  # an unkeyed hash does not match: nobody without the key can forge it
    assert key.decode() not in agent.output()
    assert "s3cret" not in agent.output()
    collector.stop()
    broker.stop()


def test_tls_with_client_certificate(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "pki")
    broker = MosquittoBroker(tmp_path / "b", tls=tls, require_client_cert=True).start()
    collector = Collector(broker).start()
    cfg = write_config(
        tmp_path / "c.yaml",
        broker.port,
        buffer_path=tmp_path / "buf.db",
        host="localhost",
        tls={"ca_file": str(tls.ca), "cert_file": str(tls.client_cert), "key_file": str(tls.client_key)},
    )
    agent = AgentProcess(cfg)
    try:
        collector.wait_for(lambda ms: any(m.topic == ROOT + "health/agent" for m in ms))
    finally:
        assert agent.terminate() == 0
    collector.stop()
    broker.stop()


@pytest.mark.parametrize("fault", ["wrong_password", "untrusted_ca"])
def test_refused_credentials_are_reported_and_buffering_goes_on(tmp_path: Path, fault: str) -> None:
    tls = make_tls_files(tmp_path / "pki")
    broker = MosquittoBroker(tmp_path / "b", users={"gw": "right"}, tls=tls if fault == "untrusted_ca" else None).start()
    (tmp_path / "pw").write_text("wrong" if fault == "wrong_password" else "right")
    extra = {"tls": {"ca_file": str(tls.other_ca)}, "host": "localhost"} if fault == "untrusted_ca" else {}
    cfg = write_config(
        tmp_path / "c.yaml",
        broker.port,
        buffer_path=tmp_path / "buf.db",
        username="gw",
        password_file=str(tmp_path / "pw"),
        health_interval="0.3s",
        **extra,
    )
    agent = AgentProcess(cfg, env=LOAD)
    want = "auth_failed" if fault == "wrong_password" else "tls_failed"
    db = tmp_path / "buf.db"
    try:
        wait_until(
            lambda: db.exists() and any(p["uplink"].get("state") == want for p in buffered_payloads(db, 3)),
            what=f"health state {want}",
        )
        depth1 = len(buffer_state(db)[1])
        wait_until(lambda: len(buffer_state(db)[1]) > depth1 + 100, what="buffer growing")
    finally:
        assert agent.terminate() == 0
    health = [p for p in buffered_payloads(db, 3) if p["uplink"].get("state") == want][-1]
    assert (
        ("credentials" in health["uplink"]["last_error"])
        if fault == "wrong_password"
        else ("TLS" in health["uplink"]["last_error"])
    )
    broker.stop()


def test_broker_down_then_back_delivers_everything_in_order(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "#"]).start()
    broker.stop()  # the collector's persistent session survives in the broker's store
    db = tmp_path / "buf.db"
    agent = AgentProcess(write_config(tmp_path / "c.yaml", broker.port, buffer_path=db), env=LOAD)
    try:
        wait_until(lambda: db.exists() and len(buffer_state(db)[1]) > 600, what="backlog while broker down")
        broker.start()
        wait_until(lambda: len(buffer_state(db)[1]) < 50, timeout=30, what="backlog drained")
    finally:
        assert agent.terminate() == 0, agent.output()
    records = delivered_all(collector, db)
    assert first_delivery_order_ok(records) == {}
    assert len({r["seq"] for r in records}) > 600
    collector.stop()
    broker.stop()


def test_broker_restarted_in_the_middle_of_a_drain(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "#"]).start()
    broker.stop()
    db = tmp_path / "buf.db"
    env = {**LOAD, "LOADGEN_RATE": "5000"}
    agent = AgentProcess(write_config(tmp_path / "c.yaml", broker.port, buffer_path=db, max_rate=2000), env=env)
    try:
        wait_until(lambda: db.exists() and len(buffer_state(db)[1]) > 8000, what="backlog")
        broker.start()
        wait_until(lambda: len(collector.snapshot()) > 1000, what="drain started")
        broker.restart()
        wait_until(lambda: len(collector.snapshot()) > 6000, timeout=30, what="drain resumed")
    finally:
        assert agent.terminate() == 0, agent.output()
    records = delivered_all(collector, db, timeout=60)
    assert first_delivery_order_ok(records) == {}
    collector.stop()
    broker.stop()
