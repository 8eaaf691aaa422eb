"""Health records for the exporters: one with every field, one of junk a stranger could publish."""

from __future__ import annotations

HEALTH: dict = {
    "schema": "headframe.health/1",
    "agent": {"version": "0.1.0", "uptime_s": 81.2},
    "buffer": {
        "depth": 7,
        "depth_by_kind": {"alarm": 1, "event": 2, "telemetry": 4, "health": 0},
        "oldest_unsent_age_s": 12.5,
        "dropped": {"cap_telemetry": 40, "expired_health": 2, "writer_error_event": 1},
        "writer": "ok",
        "bytes": 4096,
        "max_bytes": 1073741824,
        "last_seq": 1234,
        "uncommitted": 0,
        "delivered_total": 900,
    },
    "uplink": {"state": "backoff", "inflight": 0, "sent": 10, "acked": 9, "commands": {"accepted": 3, "rejected": 1}},
    "clock": {"synchronized": False},
    "system": {"disk_free_bytes": 5_000_000_000, "temperature_c": 51.5, "rss_bytes": 80_000_000, "agent_cpu_percent": 2.5},
    "power": {"source": "nut", "state": "on_battery", "battery_charge": 87},
    "producers": {
        "drivers": {
            "devices": {
                "meter-1": {
                    "state": "backoff",
                    "requests": 20,
                    "errors": 6,
                    "request_seconds": {"le": [0.01, 0.1], "cumulative": [10, 14, 20], "count": 20, "sum": 9.5},
                }
            }
        },
        "vision": {"cameras": {"cam-1": {"state": "running", "fps": 4.5, "inference_ms": 38.0, "restarts": 2, "tamper": []}}},
    },
}

JUNK: dict = {
    "schema": "headframe.health/1",
    "agent": {"version": "<script>", "uptime_s": "long"},
    "buffer": {"depth_by_kind": ["x"], "dropped": {"cap_telemetry": "many", "nonsense": 3}, "writer": 1},
    "uplink": "connected",
    "producers": {
        "drivers": {
            "devices": {
                "bad id!": {"state": "ok", "requests": 1},
                "x" * 100: {"requests": 1},
                "meter-2": {
                    "requests": True,
                    "errors": None,
                    "request_seconds": {"le": [0.1, 0.01], "cumulative": [1, 2, 3], "sum": 1},
                },
                "meter-3": [1, 2],
            }
        },
        "vision": {"cameras": ["cam-1"]},
    },
}
