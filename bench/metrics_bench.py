"""What /metrics costs: CPU per scrape and RSS, agent (100 devices) and fleet (many gateways).

    .venv/bin/python -m bench.metrics_bench [--devices 100] [--cameras 8] [--gateways 1000] [--scrapes 200]

Ours builds the families from the last health record at scrape time (agent/metrics/). The
baseline, in the same run, is prometheus_client's usual instrumented style doing the same
work: Gauge/Counter/Histogram children with the same labels, set from each health record, and
the scrape rendering those. Both scrapes go through ``generate_latest`` (the text the HTTP
listener sends); the HTTP round trip is timed once per run on a real listener.
"""

from __future__ import annotations

import argparse
import copy
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import psutil


def health_payload(devices: int, cameras: int) -> dict[str, Any]:
    """A health record as the agent builds it, with ``devices`` polled devices and ``cameras`` cameras."""
    from drivers.latency import LatencyHistogram

    hist = LatencyHistogram()
    for i in range(500):
        hist.observe(0.002 + (i % 50) / 1000)
    return {
        "schema": "headframe.health/1",
        "agent": {"version": "0.1.0", "uptime_s": 3600.0},
        "buffer": {
            "depth": 10,
            "depth_by_kind": {"alarm": 0, "event": 2, "telemetry": 8, "health": 0},
            "bytes": 40960,
            "max_bytes": 1 << 30,
            "oldest_unsent_age_s": 1.5,
            "last_seq": 123456,
            "dropped": {"cap_telemetry": 0, "expired_health": 0},
            "delivered_total": 120000,
            "writer": "ok",
            "uncommitted": 0,
        },
        "uplink": {"state": "connected", "inflight": 2, "sent": 120000, "acked": 119998, "commands": {"accepted": 1}},
        "system": {"disk_free_bytes": 10**10, "temperature_c": 50.0, "rss_bytes": 9 * 10**7, "agent_cpu_percent": 3.0},
        "clock": {"synchronized": True},
        "producers": {
            "drivers": {
                "devices": {
                    f"dev{i}": {"state": "ok", "requests": 3600, "errors": 2, "request_seconds": hist.as_dict()}
                    for i in range(devices)
                }
            },
            "vision": {
                "cameras": {
                    f"cam{i}": {"state": "running", "fps": 4.0, "inference_ms": 38.0, "restarts": 0, "tamper": []}
                    for i in range(cameras)
                }
            },
        },
        "power": {"source": "none"},
    }


def _cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    """Process CPU seconds per call (user + system), best of three rounds."""
    proc = psutil.Process()
    best = float("inf")
    for _ in range(3):
        c0 = proc.cpu_times()
        for _ in range(n):
            fn()
        c1 = proc.cpu_times()
        best = min(best, (c1.user - c0.user + c1.system - c0.system) / n)
    return best


def _baseline(payload: dict[str, Any]) -> tuple[Callable[[], None], Any]:
    """prometheus_client's instrumented style: children set from the record (update) and rendered (scrape)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from drivers.latency import BUCKETS

    reg = CollectorRegistry()
    ident = ["site", "gateway"]
    depth = Gauge("headframe_buffer_records", "", [*ident, "kind"], registry=reg)
    state = Gauge("headframe_device_state", "", [*ident, "device", "state"], registry=reg)
    requests = Counter("headframe_device_requests", "", [*ident, "device"], registry=reg)
    errors = Counter("headframe_device_errors", "", [*ident, "device"], registry=reg)
    latency = Histogram("headframe_device_request_duration_seconds", "", [*ident, "device"], buckets=BUCKETS, registry=reg)
    fps = Gauge("headframe_camera_fps", "", [*ident, "camera"], registry=reg)
    infer = Gauge("headframe_camera_inference_seconds", "", [*ident, "camera"], registry=reg)
    scalars = {name: Gauge(name, "", ident, registry=reg) for name in ("headframe_buffer_bytes", "headframe_uplink_connected")}

    def update() -> None:
        for kind, n in payload["buffer"]["depth_by_kind"].items():
            depth.labels("s", "g", kind).set(n)
        scalars["headframe_buffer_bytes"].labels("s", "g").set(payload["buffer"]["bytes"])
        scalars["headframe_uplink_connected"].labels("s", "g").set(1)
        for dev_id, dev in payload["producers"]["drivers"]["devices"].items():
            for st in ("starting", "ok", "degraded", "offline", "backoff"):
                state.labels("s", "g", dev_id, st).set(int(dev["state"] == st))
            requests.labels("s", "g", dev_id).inc(0)
            errors.labels("s", "g", dev_id).inc(0)
            latency.labels("s", "g", dev_id).observe(0.01)  # the closest an instrumented histogram gets
        for cam_id, cam in payload["producers"]["vision"]["cameras"].items():
            fps.labels("s", "g", cam_id).set(cam["fps"])
            infer.labels("s", "g", cam_id).set(cam["inference_ms"] / 1000)

    return update, reg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--fleet-devices", type=int, default=10)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    from agent.fleet.model import FleetState
    from config.metrics import MetricsSettings

    payload = health_payload(args.devices, args.cameras)
    proc = psutil.Process()
    rss0 = proc.memory_info().rss  # the agent has these already; what follows is the exporter's own

    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from agent.fleet.metrics import FleetCollector
    from agent.metrics.exporter import MetricsExporter

    exporter = MetricsExporter(MetricsSettings(enabled=True), "s", "g")
    exporter.update(payload)
    text = generate_latest(exporter.registry)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    ours = _cpu_per_call(lambda: generate_latest(exporter.registry), args.scrapes)
    record = _cpu_per_call(lambda: orjson.dumps(payload), args.scrapes * 100)
    update, reg = _baseline(payload)
    update()
    base_scrape = _cpu_per_call(lambda: generate_latest(reg), args.scrapes)
    base_update = _cpu_per_call(update, args.scrapes)
    base_series = sum(1 for line in generate_latest(reg).splitlines() if line and not line.startswith(b"#"))
    # one real HTTP listener: what the agent runs
    from prometheus_client import start_http_server

    server, _ = start_http_server(0, "127.0.0.1", exporter.registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    t0 = time.perf_counter()
    for _ in range(20):
        with urllib.request.urlopen(url) as resp:
            resp.read()
    http_ms = (time.perf_counter() - t0) / 20 * 1000
    server.shutdown()
    rss1 = proc.memory_info().rss
    print(f"agent, {args.devices} devices + {args.cameras} cameras: {series} series, {len(text) / 1024:.0f} KiB per scrape")
    print(f"  ours (families from the health record at scrape): {ours * 1000:.2f} ms CPU per scrape")
    print(
        f"  baseline (instrumented children, {base_series} series): scrape {base_scrape * 1000:.2f} ms"
        f" + update {base_update * 1000:.2f} ms per health record; ratio ours/baseline scrape {ours / base_scrape:.2f}"
    )
    print(f"  for scale: serialising the health record (orjson) {record * 1e6:.0f} µs")
    print(f"  HTTP scrape round trip (client in the same process): {http_ms:.1f} ms wall")
    print(f"  RSS: +{(rss1 - rss0) / 1e6:.1f} MB for prometheus_client, the exporter and its listener")

    state = FleetState(max_gateways=args.gateways)
    one = orjson.dumps({"ts": "2026-11-25T10:00:00.000Z", "payload": health_payload(args.fleet_devices, 1)})
    for i in range(args.gateways):
        state.on_message(f"headframe/site/gw{i}/health/agent", one)
    state.gateways = {k: copy.copy(v) for k, v in state.gateways.items()}
    import threading

    fleet_reg = CollectorRegistry()
    fleet_reg.register(FleetCollector(state, threading.Lock()))
    fleet_text = generate_latest(fleet_reg)
    fleet_series = sum(1 for line in fleet_text.splitlines() if line and not line.startswith(b"#"))
    fleet = _cpu_per_call(lambda: generate_latest(fleet_reg), max(3, args.scrapes // 50))
    print(
        f"fleet, {args.gateways} gateways × {args.fleet_devices} devices: {fleet_series} series, "
        f"{len(fleet_text) / 1e6:.1f} MB, {fleet * 1000:.0f} ms CPU per scrape; "
        f"RSS now {proc.memory_info().rss / 1e6:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
