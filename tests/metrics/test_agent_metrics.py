"""The agent's /metrics with a real agent, a real Modbus TCP device and a real mosquitto."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest

from config import ConfigError, load_settings
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.metrics.scrape import scrape, value
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker, free_port
from tests.support.wait import wait_until

DEVICE = "plc-1"


def _device(port: int) -> dict[str, object]:
    return {
        "id": DEVICE,
        "protocol": "modbus_tcp",
        "host": "127.0.0.1",
        "port": port,
        "timeout": "300ms",
        "groups": [{"name": "default", "interval": "100ms"}],
        "points": [{"name": "level", "address": 0, "type": "uint16"}],
    }


def test_metrics_follow_the_device_and_the_broker(tmp_path: Path, broker: MosquittoBroker, agents: list[AgentProcess]) -> None:
    image = RegisterImage(size=10)
    plc_port, metrics_port = free_port(), free_port()
    plc = ServerThread({1: image}, tcp_port=plc_port).start()
    collector = Collector(broker, topics=["headframe/+/+/health/#"]).start()
    cfg = write_config(
        tmp_path / "c.yaml",
        broker.port,
        buffer_path=tmp_path / "buf.db",
        health_interval="300ms",
        extra={"devices": [_device(plc_port)], "metrics": {"enabled": True, "port": metrics_port}},
    )
    agents.append(agent := AgentProcess(cfg))
    try:
        # 1. a healthy device: the scrape is the health record the broker received, value for value
        def polled() -> dict | None:
            s = scrape(metrics_port)
            return s if s and (value(s, "headframe_device_requests_total", device=DEVICE) or 0) >= 3 else None

        s = wait_until("the device's requests on /metrics", polled, timeout=20)
        ident = {"site": "test-site", "gateway": "gw-test"}
        assert value(s, "headframe_device_state", device=DEVICE, state="ok", **ident) == 1
        assert value(s, "headframe_device_errors_total", device=DEVICE) == 0
        requests = value(s, "headframe_device_requests_total", device=DEVICE)
        assert requests is not None and requests <= image.requests  # the device saw at least as many
        assert value(s, "headframe_device_request_duration_seconds_count", device=DEVICE) == requests
        assert value(s, "headframe_device_request_duration_seconds_bucket", device=DEVICE, le="+Inf") == requests
        assert 0 < (value(s, "headframe_device_request_duration_seconds_sum", device=DEVICE) or 0) < requests * 0.3
        assert value(s, "headframe_uplink_connected", **ident) == 1
        assert value(s, "headframe_uplink_state", state="connected") == 1
        assert (value(s, "process_resident_memory_bytes") or 0) > 10e6
        last_seq = value(s, "headframe_buffer_last_seq")

        def published() -> dict | None:
            for doc in map(orjson.loads, (m.payload for m in collector.snapshot())):
                if doc["payload"]["buffer"]["last_seq"] == last_seq:
                    return doc["payload"]
            return None

        record = wait_until("the scraped health record at the broker", published, timeout=10)
        dev = record["producers"]["drivers"]["devices"][DEVICE]
        assert dev["requests"] == requests and dev["request_seconds"]["count"] == requests
        assert value(s, "headframe_buffer_records", kind="health") == record["buffer"]["depth_by_kind"]["health"]

        # 2. the device dies: errors count up and the state leaves ok
        plc.stop()

        def failing() -> dict | None:
            s = scrape(metrics_port)
            if s is None or (value(s, "headframe_device_errors_total", device=DEVICE) or 0) < 2:
                return None
            return s if value(s, "headframe_device_state", device=DEVICE, state="ok") == 0 else None

        s = wait_until("device errors on /metrics", failing, timeout=20)
        failed_requests = value(s, "headframe_device_requests_total", device=DEVICE) or 0
        assert failed_requests > requests
        # failures are timed too: every request sent is in the histogram
        assert value(s, "headframe_device_request_duration_seconds_count", device=DEVICE) == failed_requests

        # 3. the broker goes away: the uplink says so and the backlog grows, scrape after scrape
        broker.stop()
        down = wait_until(
            "uplink down on /metrics", lambda: (s := scrape(metrics_port)) and value(s, "headframe_uplink_connected") == 0 and s
        )
        depth0 = sum(v for (n, _), v in down.items() if n == "headframe_buffer_records")

        def grown() -> bool:
            s = scrape(metrics_port)
            depth = sum(v for (n, _), v in (s or {}).items() if n == "headframe_buffer_records")
            return depth >= depth0 + 3 and (value(s or {}, "headframe_buffer_oldest_unsent_age_seconds") or 0) > 0

        wait_until("the backlog to grow on /metrics", grown, timeout=15)
        assert agent.terminate() == 0
    finally:
        collector.stop()
        plc.stop()


def test_a_busy_port_is_said_and_the_agent_runs_on(tmp_path: Path, broker: MosquittoBroker, agents: list[AgentProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        collector = Collector(broker, topics=["headframe/+/+/health/#"]).start()
        cfg = write_config(
            tmp_path / "c.yaml",
            broker.port,
            buffer_path=tmp_path / "buf.db",
            extra={"metrics": {"enabled": True, "port": port}},
        )
        agents.append(agent := AgentProcess(cfg))
        try:
            wait_until("the agent's health at the broker", lambda: collector.snapshot(), timeout=20)
            wait_until("the metrics error in the log", lambda: "metrics: cannot listen on" in agent.output(), timeout=5)
            line = next(x for x in agent.output().splitlines() if "metrics: cannot listen" in x)
            assert f"127.0.0.1:{port}" in line and "metrics.port" in line
            assert agent.proc.poll() is None
            assert agent.terminate() == 0
        finally:
            collector.stop()


def test_a_non_loopback_listener_needs_the_opt_in(tmp_path: Path) -> None:
    def load(metrics: dict[str, object]) -> None:
        load_settings(write_config(tmp_path / "c.yaml", 1883, buffer_path=tmp_path / "b.db", extra={"metrics": metrics}))

    with pytest.raises(ConfigError) as refused:
        load({"enabled": True, "listen": "0.0.0.0"})
    said = str(refused.value)
    assert "c.yaml:" in said and "metrics:" in said and "'allow_remote: true' to listen on 0.0.0.0" in said
    load({"enabled": True, "listen": "0.0.0.0", "allow_remote": True})
    load({"enabled": True, "listen": "::1"})
