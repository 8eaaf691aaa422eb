"""Health record → Prometheus metric families. Defensive: the fleet exporter feeds it what strangers publish.

A value of the wrong type is skipped, an id that is not a valid config id is skipped, a
histogram that does not add up is skipped, and the number of devices and cameras per gateway
is capped: a malformed or hostile record costs at most a bounded number of series, never a crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from itertools import pairwise
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from agent.metrics.specs import (
    CAMERA_STATES,
    COMMAND_RESULTS,
    DEVICE_STATES,
    DROP_REASONS,
    RECORD_KINDS,
    UPLINK_STATES,
    Spec,
    valid_id,
)

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,31}$")
MAX_DEVICES = 512
MAX_CAMERAS = 64
MAX_BUCKETS = 30

#: buffer counter names (health ``buffer.dropped`` keys) → exported reason
_DROP_PREFIX = {"cap": "byte_cap", "expired": "ttl", "disk_full": "disk_full", "writer_error": "writer_error"}

Histogram = tuple[list[tuple[str, float]], float]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _histogram(doc: Any) -> Histogram | None:
    """``{"le": [...], "cumulative": [...], "sum": s}`` (drivers/latency.py) → buckets, or None if inconsistent."""
    doc = _map(doc)
    les, cum, total = doc.get("le"), doc.get("cumulative"), _num(doc.get("sum"))
    if not isinstance(les, list) or not isinstance(cum, list) or total is None:
        return None
    if len(les) > MAX_BUCKETS or len(cum) != len(les) + 1:
        return None
    bounds = [b for b in map(_num, les) if b is not None]
    counts = [c for c in map(_num, cum) if c is not None and c >= 0]
    if len(bounds) != len(les) or len(counts) != len(cum):
        return None
    if any(b2 <= b1 for b1, b2 in pairwise(bounds)) or any(c2 < c1 for c1, c2 in pairwise(counts)):
        return None
    keys = [*(repr(b) for b in bounds), "+Inf"]
    return list(zip(keys, counts, strict=True)), total


def _drop_reason(key: str) -> tuple[str, str] | None:
    """``cap_telemetry`` → (byte_cap, telemetry); None for a counter this exporter does not know."""
    head, _, kind = key.rpartition("_")
    reason = _DROP_PREFIX.get(head)
    return (reason, kind) if reason in DROP_REASONS and kind in RECORD_KINDS else None


class Samples:
    """Collects samples for many gateways, then builds one family per name (Prometheus wants that)."""

    def __init__(self, specs: Mapping[str, Spec]) -> None:
        self.specs = specs
        self.values: dict[str, list[tuple[tuple[str, ...], float]]] = {name: [] for name in specs}
        self.histograms: dict[str, list[tuple[tuple[str, ...], Histogram]]] = {name: [] for name in specs}

    def add(self, name: str, labels: tuple[str, ...], value: Any) -> None:
        num = _num(value)
        if num is not None:
            self.values[name].append((labels, num))

    def add_histogram(self, name: str, labels: tuple[str, ...], hist: Histogram | None) -> None:
        if hist is not None:
            self.histograms[name].append((labels, hist))

    def families(self) -> Iterator[Metric]:
        for name, spec in self.specs.items():
            labels = list(spec.all_labels)
            family: Metric
            if spec.kind == "histogram":
                hist = HistogramMetricFamily(name, spec.help, labels=labels)
                for lv, (buckets, total) in self.histograms[name]:
                    hist.add_metric(list(lv), buckets, total)
                yield hist
                continue
            family = (
                CounterMetricFamily(name, spec.help, labels=labels)
                if spec.kind == "counter"
                else GaugeMetricFamily(name, spec.help, labels=labels)
            )
            for lv, value in self.values[name]:
                family.add_metric(list(lv), value)
            yield family


def _one_hot(out: Samples, name: str, ident: tuple[str, ...], states: tuple[str, ...], current: Any) -> None:
    for state in states:
        out.add(name, (*ident, state), 1 if current == state else 0)


def add_health(out: Samples, site: str, gateway: str, payload: Any, built_at: float | None) -> None:
    """Add one gateway's health record to ``out``; ``built_at`` is when it was built (epoch s)."""
    ident = (site, gateway)
    h = _map(payload)
    agent = _map(h.get("agent"))
    version = agent.get("version")
    out.add("headframe_agent_info", (*ident, version if isinstance(version, str) and VERSION_RE.match(version) else ""), 1)
    out.add("headframe_agent_uptime_seconds", ident, agent.get("uptime_s"))
    out.add("headframe_health_timestamp_seconds", ident, built_at)
    _buffer(out, ident, _map(h.get("buffer")))
    _uplink(out, ident, _map(h.get("uplink")))
    producers = _map(h.get("producers"))
    _devices(out, ident, _map(_map(producers.get("drivers")).get("devices")))
    _cameras(out, ident, _map(_map(producers.get("vision")).get("cameras")))
    clock = _map(h.get("clock")).get("synchronized")
    if isinstance(clock, bool):
        out.add("headframe_clock_synchronized", ident, int(clock))
    system = _map(h.get("system"))
    out.add("headframe_disk_free_bytes", ident, system.get("disk_free_bytes"))
    out.add("headframe_temperature_celsius", ident, system.get("temperature_c"))
    out.add("headframe_agent_resident_memory_bytes", ident, system.get("rss_bytes"))
    out.add("headframe_agent_cpu_percent", ident, system.get("agent_cpu_percent"))
    power = _map(h.get("power"))
    if power.get("source") in ("nut", "gpio"):
        out.add("headframe_power_on_battery", ident, int(power.get("state") in ("on_battery", "low_battery")))
        out.add("headframe_power_battery_charge_percent", ident, power.get("battery_charge"))


def _buffer(out: Samples, ident: tuple[str, ...], b: Mapping[str, Any]) -> None:
    by_kind = _map(b.get("depth_by_kind"))
    for kind in RECORD_KINDS:
        out.add("headframe_buffer_records", (*ident, kind), by_kind.get(kind))
    out.add("headframe_buffer_bytes", ident, b.get("bytes"))
    out.add("headframe_buffer_max_bytes", ident, b.get("max_bytes"))
    out.add("headframe_buffer_oldest_unsent_age_seconds", ident, b.get("oldest_unsent_age_s"))
    out.add("headframe_buffer_last_seq", ident, b.get("last_seq"))
    out.add("headframe_buffer_uncommitted_records", ident, b.get("uncommitted"))
    if b.get("writer") in ("ok", "error"):
        out.add("headframe_buffer_writer_ok", ident, int(b.get("writer") == "ok"))
    dropped: dict[tuple[str, str], float] = {(r, k): 0.0 for r in DROP_REASONS for k in RECORD_KINDS}
    for key, n in _map(b.get("dropped")).items():
        which, num = _drop_reason(str(key)), _num(n)
        if which is not None and num is not None:
            dropped[which] += num
    for (reason, kind), n in dropped.items():
        out.add("headframe_buffer_dropped_records_total", (*ident, reason, kind), n)
    out.add("headframe_buffer_delivered_records_total", ident, b.get("delivered_total"))


def _uplink(out: Samples, ident: tuple[str, ...], u: Mapping[str, Any]) -> None:
    if not u:
        return
    _one_hot(out, "headframe_uplink_state", ident, UPLINK_STATES, u.get("state"))
    out.add("headframe_uplink_connected", ident, int(u.get("state") == "connected"))
    out.add("headframe_uplink_inflight_messages", ident, u.get("inflight"))
    out.add("headframe_uplink_sent_messages_total", ident, u.get("sent"))
    out.add("headframe_uplink_acked_messages_total", ident, u.get("acked"))
    commands = _map(u.get("commands"))
    for result in COMMAND_RESULTS:
        out.add("headframe_uplink_commands_total", (*ident, result), commands.get(result))


def _devices(out: Samples, ident: tuple[str, ...], devices: Mapping[str, Any]) -> None:
    for dev_id in [d for d, v in devices.items() if valid_id(d) and isinstance(v, Mapping)][:MAX_DEVICES]:
        dev = devices[dev_id]
        labels = (*ident, dev_id)
        _one_hot(out, "headframe_device_state", labels, DEVICE_STATES, dev.get("state"))
        out.add("headframe_device_requests_total", labels, dev.get("requests"))
        out.add("headframe_device_errors_total", labels, dev.get("errors"))
        out.add_histogram("headframe_device_request_duration_seconds", labels, _histogram(dev.get("request_seconds")))


def _cameras(out: Samples, ident: tuple[str, ...], cameras: Mapping[str, Any]) -> None:
    for cam_id in [c for c, v in cameras.items() if valid_id(c) and isinstance(v, Mapping)][:MAX_CAMERAS]:
        cam = cameras[cam_id]
        labels = (*ident, cam_id)
        _one_hot(out, "headframe_camera_state", labels, CAMERA_STATES, cam.get("state"))
        out.add("headframe_camera_fps", labels, cam.get("fps"))
        ms = _num(cam.get("inference_ms"))
        out.add("headframe_camera_inference_seconds", labels, ms / 1000.0 if ms is not None else None)
        out.add("headframe_camera_restarts_total", labels, cam.get("restarts"))
        tamper = cam.get("tamper")
        out.add("headframe_camera_tampered", labels, int(bool(tamper)) if isinstance(tamper, list) else None)
