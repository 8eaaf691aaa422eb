"""Fleet state from retained status and health messages; pure, so it is easy to test.

Flags what a fleet engineer acts on: offline too long, backlog growing, a camera tampered,
clock not synchronised, records dropped, devices or cameras failing, malformed health.

Times come from what the gateway says (status ``since``, the will's session, record ``ts``),
not from when this consumer happened to receive a message: a retained "offline" read today
about a gateway that died last week must say last week. Receive time is only the fallback
for messages that carry no time (older agents).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agent.metrics.specs import valid_id


@dataclass
class Gateway:
    key: str
    site: str
    gateway: str
    status: str = "unknown"
    status_since: float | None = None
    #: True when ``status_since`` is the last sign of life (a will cannot know the moment of death)
    since_is_last_seen: bool = False
    reason: str | None = None
    last_seen: float | None = None
    #: the previous outage as the gateway reported it when it came back online
    previous_down_s: float | None = None
    previous_reason: str | None = None
    health: dict[str, Any] | None = None
    health_error: str | None = None
    backlog: list[tuple[float, int]] = field(default_factory=list)


class FleetState:
    def __init__(self, offline_after_s: float = 300.0, clock: Any = time.time, max_gateways: int = 10000) -> None:
        self.gateways: dict[str, Gateway] = {}
        self.offline_after_s = offline_after_s
        self.clock = clock
        #: topics name gateways, and anyone allowed to publish can invent them: memory stays bounded
        self.max_gateways = max_gateways
        #: messages ignored, by reason: ``bad_id`` (not an id a config could hold), ``too_many_gateways``
        self.rejected = {"bad_id": 0, "too_many_gateways": 0}

    def _gw(self, site: str, gateway: str) -> Gateway | None:
        if not (valid_id(site) and valid_id(gateway)):
            self.rejected["bad_id"] += 1
            return None
        key = f"{site}/{gateway}"
        if key not in self.gateways:
            if len(self.gateways) >= self.max_gateways:
                self.rejected["too_many_gateways"] += 1
                return None
            self.gateways[key] = Gateway(key, site, gateway)
        return self.gateways[key]

    def on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 4:
            return
        gw = self._gw(parts[1], parts[2])
        if gw is None:
            return
        now = self.clock()
        try:
            doc = orjson.loads(payload)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except (orjson.JSONDecodeError, ValueError) as exc:
            if parts[3] == "health":
                gw.health_error = f"malformed health: {exc}"
                gw.last_seen = now
            return
        if parts[3] == "status":
            self._on_status(gw, doc, now)
            return
        if parts[3] == "health":
            payload_doc = doc.get("payload")
            if not isinstance(payload_doc, dict) or payload_doc.get("schema") != "headframe.health/1":
                gw.health_error = "malformed health: not a headframe.health/1 payload"
                gw.last_seen = now
                return
            gw.health, gw.health_error, gw.last_seen = payload_doc, None, parse_iso(doc.get("ts")) or now
            depth = _at(payload_doc, "buffer").get("depth")
            if isinstance(depth, int):
                gw.backlog = [*gw.backlog[-9:], (now, depth)]

    def _on_status(self, gw: Gateway, doc: dict[str, Any], now: float) -> None:
        raw = doc.get("status")
        status: str = raw if isinstance(raw, str) else "unknown"
        since = parse_iso(doc.get("since"))
        last_seen = False
        if since is None and status == "offline":
            # the will: set at connect, so the best the gateway can vouch for is its last sign of life
            marks = [
                t
                for t in (parse_iso(doc.get("last_seen_by_gateway")), parse_iso(doc.get("session_started")), gw.last_seen)
                if t is not None
            ]
            since, last_seen = (max(marks), True) if marks else (None, False)
        if since is not None:
            gw.status_since, gw.since_is_last_seen = since, last_seen
        elif status != gw.status:
            gw.status_since, gw.since_is_last_seen = now, False
        gw.status, gw.reason = status, doc.get("reason") if isinstance(doc.get("reason"), str) else None
        prev = doc.get("previous_session")
        if status == "online" and isinstance(prev, dict):
            down = prev.get("down_s")
            gw.previous_down_s = float(down) if isinstance(down, int | float) else None
            gw.previous_reason = prev.get("reason") if isinstance(prev.get("reason"), str) else None

    def problems(self, gw: Gateway) -> list[str]:
        now = self.clock()
        out: list[str] = []
        if gw.status == "offline" and gw.status_since and now - gw.status_since > self.offline_after_s:
            mark = " since the last sign of life" if gw.since_is_last_seen else ""
            out.append(f"offline for {int((now - gw.status_since) / 60)} min{mark} ({gw.reason or 'no reason'})")
        if gw.health_error:
            out.append(gw.health_error)
        h = gw.health or {}
        if len(gw.backlog) >= 3 and all(b[1] < a[1] for b, a in zip(gw.backlog[-3:], gw.backlog[-2:], strict=False)):
            out.append(f"backlog growing ({gw.backlog[-1][1]} unsent)")
        if _at(h, "clock").get("synchronized") is False:
            out.append("clock not synchronised")
        dropped = {k: v for k, v in _at(h, "buffer", "dropped").items() if v}
        if dropped:
            out.append(f"records dropped: {dropped}")
        uplink = _at(h, "uplink").get("state")
        if uplink in ("auth_failed", "tls_failed"):
            out.append(f"uplink {uplink}")
        for cam_id, cam in _at(h, "producers", "vision", "cameras").items():
            if not isinstance(cam, dict):
                continue
            if cam.get("tamper"):
                out.append(f"camera {cam_id} tampered: {', '.join(map(str, _list(cam['tamper'])))}")
            if cam.get("state") not in ("running", None):
                out.append(f"camera {cam_id} {cam.get('state')}")
        for dev_id, dev in _at(h, "producers", "drivers", "devices").items():
            if isinstance(dev, dict) and dev.get("state") in ("offline", "backoff"):
                out.append(f"device {dev_id} {dev['state']}: {dev.get('last_error')}")
        return out

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for gw in sorted(self.gateways.values(), key=lambda g: g.key):
            h = gw.health or {}
            b, s = _at(h, "buffer"), _at(h, "system")
            rows.append(
                {
                    "gateway": gw.key,
                    "status": gw.status,
                    "since": _iso(gw.status_since),
                    "since_is_last_seen": gw.since_is_last_seen,
                    "last_seen": _iso(gw.last_seen),
                    "previous_down_s": gw.previous_down_s,
                    "previous_reason": gw.previous_reason,
                    "backlog": _n(b.get("depth")),
                    "oldest_unsent_s": _n(b.get("oldest_unsent_age_s")),
                    "dropped": sum(v for v in _at(b, "dropped").values() if isinstance(v, int)),
                    "devices": {k: _at(v).get("state") for k, v in _at(h, "producers", "drivers", "devices").items()},
                    "cameras": {k: _at(v).get("state") for k, v in _at(h, "producers", "vision", "cameras").items()},
                    "disk_free_mb": round(s["disk_free_bytes"] / 1e6) if isinstance(s.get("disk_free_bytes"), int) else None,
                    "temperature_c": _n(s.get("temperature_c")),
                    "clock_synced": _at(h, "clock").get("synchronized"),
                    "problems": self.problems(gw),
                }
            )
        return rows


def _at(doc: Any, *path: str) -> dict[str, Any]:
    """``doc[path...]`` when every step is a JSON object, else ``{}``: a health record is untrusted input."""
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else {}


def _n(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parse_iso(value: Any) -> float | None:
    """Epoch seconds from the agent's ISO-8601 UTC times; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None
