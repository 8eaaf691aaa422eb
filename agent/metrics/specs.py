"""Every metric family the agent and ``headframe fleet`` export: one table, so docs, dashboard and tests agree.

All families carry ``site`` and ``gateway`` first (from the config in the agent, from the MQTT
topic in the fleet exporter), so one Grafana dashboard reads either. Values come from the
health record (schema ``headframe.health/1``); nothing is measured twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["gauge", "counter", "histogram"]

#: the config's id rule (config.types.Ident): what a site, gateway, device or camera id may be
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_id(value: Any) -> bool:
    """Only ids the agent's own config could contain become label values (bounded length and alphabet)."""
    return isinstance(value, str) and ID_RE.match(value) is not None


#: the labels every family starts with
IDENTITY = ("site", "gateway")

#: states exported one-hot (a state the agent does not know is not exported; bounded series)
UPLINK_STATES = ("connected", "connecting", "backoff", "auth_failed", "tls_failed", "stopped")
DEVICE_STATES = ("starting", "ok", "degraded", "offline", "backoff")
CAMERA_STATES = ("starting", "running", "restarting", "stopped", "failed")
DROP_REASONS = ("byte_cap", "ttl", "disk_full", "writer_error")
RECORD_KINDS = ("alarm", "event", "telemetry", "health")
COMMAND_RESULTS = ("accepted", "rejected", "flood_dropped", "wrong_topic")


@dataclass(frozen=True)
class Spec:
    name: str  # counters end in _total here; prometheus_client names the family without it
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    #: True: ``site`` and ``gateway`` come before ``labels``
    identity: bool = True

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (*IDENTITY, *self.labels) if self.identity else self.labels


_SPECS = [
    Spec("headframe_agent_info", "gauge", "Always 1; the agent's version as a label.", ("version",)),
    Spec("headframe_agent_uptime_seconds", "gauge", "Seconds since the agent process started."),
    Spec("headframe_health_timestamp_seconds", "gauge", "When the health record these values come from was built (epoch s)."),
    Spec("headframe_buffer_records", "gauge", "Records waiting in the durable buffer, by kind.", ("kind",)),
    Spec("headframe_buffer_bytes", "gauge", "Bytes the buffered records occupy."),
    Spec("headframe_buffer_max_bytes", "gauge", "The buffer's byte cap (buffer.max_bytes)."),
    Spec("headframe_buffer_oldest_unsent_age_seconds", "gauge", "Age of the oldest record not yet acknowledged by the broker."),
    Spec("headframe_buffer_last_seq", "gauge", "Sequence number of the last committed record."),
    Spec("headframe_buffer_uncommitted_records", "gauge", "Records handed to the buffer and not yet committed."),
    Spec("headframe_buffer_writer_ok", "gauge", "1 while the buffer's writer commits, 0 after a writer error."),
    Spec(
        "headframe_buffer_dropped_records_total", "counter", "Records the buffer removed unsent, by reason.", ("reason", "kind")
    ),
    Spec("headframe_buffer_delivered_records_total", "counter", "Records acknowledged by the broker and deleted."),
    Spec("headframe_uplink_state", "gauge", "1 for the uplink's current state, 0 for the others.", ("state",)),
    Spec("headframe_uplink_connected", "gauge", "1 while connected to the broker."),
    Spec("headframe_uplink_inflight_messages", "gauge", "Messages published and not yet acknowledged (PUBACK)."),
    Spec("headframe_uplink_sent_messages_total", "counter", "Messages published since the agent started."),
    Spec("headframe_uplink_acked_messages_total", "counter", "Messages acknowledged by the broker since the agent started."),
    Spec("headframe_uplink_commands_total", "counter", "Inbound commands by outcome.", ("result",)),
    Spec("headframe_device_state", "gauge", "1 for the device's current polling state, 0 for the others.", ("device", "state")),
    Spec("headframe_device_requests_total", "counter", "Requests sent to the device (retries included).", ("device",)),
    Spec("headframe_device_errors_total", "counter", "Requests that failed (timeout, exception, bad frame).", ("device",)),
    Spec(
        "headframe_device_request_duration_seconds",
        "histogram",
        "Time per request, answered or failed (includes waiting for a shared serial bus).",
        ("device",),
    ),
    Spec("headframe_camera_state", "gauge", "1 for the camera worker's current state, 0 for the others.", ("camera", "state")),
    Spec("headframe_camera_fps", "gauge", "Frames analysed per second (last 5 s window).", ("camera",)),
    Spec("headframe_camera_inference_seconds", "gauge", "Mean detector time per run (last 5 s window).", ("camera",)),
    Spec("headframe_camera_restarts_total", "counter", "Camera worker restarts since the agent started.", ("camera",)),
    Spec("headframe_camera_tampered", "gauge", "1 while a tamper alarm (covered, moved, blurred, lost) is active.", ("camera",)),
    Spec("headframe_clock_synchronized", "gauge", "1 when the system clock is NTP-synchronised, 0 when not."),
    Spec("headframe_disk_free_bytes", "gauge", "Free bytes on the buffer's file system."),
    Spec("headframe_temperature_celsius", "gauge", "SoC/CPU temperature."),
    Spec("headframe_agent_resident_memory_bytes", "gauge", "The agent's resident memory (RSS)."),
    Spec("headframe_agent_cpu_percent", "gauge", "The agent's CPU use since the previous health record (100 = one core)."),
    Spec("headframe_power_on_battery", "gauge", "1 while the UPS reports mains lost (on battery or low battery)."),
    Spec("headframe_power_battery_charge_percent", "gauge", "UPS battery charge."),
]

AGENT_SPECS: dict[str, Spec] = {s.name: s for s in _SPECS}

#: what only ``headframe fleet --metrics`` adds
FLEET_SPECS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("headframe_fleet_gateways", "gauge", "Gateways the fleet exporter tracks.", identity=False),
        Spec("headframe_fleet_gateway_online", "gauge", "1 when the gateway's retained status is online."),
        Spec("headframe_fleet_health_malformed", "gauge", "1 when the gateway's last health message was malformed."),
        Spec(
            "headframe_fleet_rejected_messages_total",
            "counter",
            "Messages ignored: a site/gateway id that is not a valid id, or beyond --metrics-max-gateways.",
            ("reason",),
            identity=False,
        ),
    ]
}


def exposed_names(specs: dict[str, Spec]) -> set[str]:
    """Sample names as they appear on ``/metrics`` (histograms as _bucket/_sum/_count)."""
    out: set[str] = set()
    for s in specs.values():
        if s.kind == "histogram":
            out |= {s.name + "_bucket", s.name + "_sum", s.name + "_count"}
        else:
            out.add(s.name)
    return out
