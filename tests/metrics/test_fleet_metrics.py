"""``headframe fleet --metrics`` with a real mosquitto, a real agent, and gateways that publish garbage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from agent.fleet.model import FleetState
from agent.fleet.view import text_table
from tests.metrics.payloads import HEALTH, JUNK
from tests.metrics.scrape import scrape, value
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker, free_port
from tests.support.wait import wait_until


def _publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def test_fleet_exports_every_gateway_and_refuses_hostile_ones(
    tmp_path: Path, broker: MosquittoBroker, agents: list[AgentProcess]
) -> None:
    port = free_port()
    log = (tmp_path / "fleet.log").open("wb")
    argv = ["fleet", "--broker", f"127.0.0.1:{broker.port}", "--max-gateways", "4", "--metrics", f"127.0.0.1:{port}"]
    fleet = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *argv],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hostile")
    try:
        cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", health_interval="300ms")
        agents.append(AgentProcess(cfg))

        def real_agent() -> dict | None:
            s = scrape(port)
            return s if s and value(s, "headframe_uplink_connected", gateway="gw-test") == 1 else None

        wait_until("the real agent's health on the fleet's /metrics", real_agent, timeout=25)

        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        health = orjson.dumps({"ts": "2026-11-25T10:00:00.000Z", "payload": HEALTH})
        _publish(pub, "headframe/mine-a/gw-01/status", b'{"status": "online"}', retain=True)
        _publish(pub, "headframe/mine-a/gw-01/health/agent", health)
        _publish(pub, 'headframe/mine-a/gw"} 1 evil{x="/health/agent', health)  # not an id: refused
        _publish(pub, f"headframe/mine-a/{'g' * 65}/health/agent", health)  # too long: refused
        _publish(pub, "headframe/mine-a/gw-02/health/agent", orjson.dumps({"payload": JUNK}))
        _publish(pub, "headframe/mine-a/gw-03/health/agent", b"{half a json")
        _publish(pub, "headframe/mine-a/gw-04/health/agent", health)  # the fifth gateway: over --max-gateways
        s = wait_until(
            "the fifth gateway refused",
            lambda: (s := scrape(port)) and value(s, "headframe_fleet_rejected_messages_total", reason="too_many_gateways") and s,
        )
        wait_until("the table with the junk gateway", lambda: "mine-a/gw-02" in (tmp_path / "fleet.log").read_text(), timeout=10)
        assert fleet.poll() is None
        gw1 = {"site": "mine-a", "gateway": "gw-01"}
        assert value(s, "headframe_fleet_gateways") == 4
        assert value(s, "headframe_fleet_rejected_messages_total", reason="bad_id") == 2
        assert value(s, "headframe_fleet_gateway_online", **gw1) == 1
        assert value(s, "headframe_fleet_health_malformed", gateway="gw-03") == 1
        assert value(s, "headframe_fleet_health_malformed", **gw1) == 0
        assert value(s, "headframe_health_timestamp_seconds", **gw1) == 1795600800.0
        assert value(s, "headframe_buffer_records", kind="telemetry", **gw1) == 4
        assert value(s, "headframe_buffer_dropped_records_total", reason="byte_cap", kind="telemetry", **gw1) == 40
        assert value(s, "headframe_buffer_dropped_records_total", reason="ttl", kind="health", **gw1) == 2
        assert value(s, "headframe_buffer_dropped_records_total", reason="writer_error", kind="event", **gw1) == 1
        assert value(s, "headframe_uplink_state", state="backoff", **gw1) == 1
        assert value(s, "headframe_clock_synchronized", **gw1) == 0
        assert value(s, "headframe_device_state", device="meter-1", state="backoff", **gw1) == 1
        assert value(s, "headframe_device_errors_total", device="meter-1", **gw1) == 6
        assert value(s, "headframe_device_request_duration_seconds_bucket", device="meter-1", le="0.1", **gw1) == 14
        assert value(s, "headframe_device_request_duration_seconds_count", device="meter-1", **gw1) == 20
        assert value(s, "headframe_camera_inference_seconds", camera="cam-1", **gw1) == 0.038
        assert value(s, "headframe_camera_fps", camera="cam-1", **gw1) == 4.5
        # the junk gateway: there, with only what was well-formed
        gw2 = {(n, lv) for (n, lv) in s if ("gateway", "gw-02") in lv}
        assert value(s, "headframe_agent_info", gateway="gw-02", version="") == 1
        assert not any(("device", d) in lv for _, lv in gw2 for d in ("bad id!", "x" * 100, "meter-3"))
        assert value(s, "headframe_device_requests_total", gateway="gw-02", device="meter-2") is None
        assert value(s, "headframe_device_request_duration_seconds_count", gateway="gw-02") is None
        labels = {v for _, lv in s for _, v in lv}
        assert not any("evil" in v or v.startswith("ggg") for v in labels)
    finally:
        pub.loop_stop()
        fleet.terminate()
        fleet.wait(10)
        log.close()
    assert "Traceback" not in (tmp_path / "fleet.log").read_text()


def test_fleet_table_and_page_survive_junk_health() -> None:
    state = FleetState()
    state.on_message("headframe/s/gw-02/status", b'{"status": {"x": 1}, "reason": [1]}')
    state.on_message("headframe/s/gw-02/health/agent", orjson.dumps({"payload": JUNK}))
    junk = {**JUNK, "clock": "yes", "system": {"temperature_c": {"x": 1}}, "buffer": {"oldest_unsent_age_s": "old"}}
    junk["producers"] = {"vision": {"cameras": {"cam-1": {"tamper": [1, None], "state": 3}}}, "drivers": {"devices": ["x"]}}
    state.on_message("headframe/s/gw-05/health/agent", orjson.dumps({"payload": junk}))
    table = text_table(state.rows())
    assert "s/gw-02" in table and "camera cam-1 tampered: 1, None" in table


def test_fleet_metrics_refuse_a_remote_address_without_the_opt_in() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", "--broker", "127.0.0.1:1", "--metrics", "0.0.0.0:9465"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2
    assert "--metrics 0.0.0.0:9465" in res.stderr and "--metrics-allow-remote" in res.stderr
