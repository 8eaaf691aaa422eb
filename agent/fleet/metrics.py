"""``headframe fleet --metrics``: every gateway's last health record as Prometheus families.

The gateways' health records arrive over MQTT and are hostile input: ids that are not config
ids never become labels (FleetState refuses them and counts them), a record's odd fields are
skipped by ``add_health``, and one bad gateway never spoils the scrape for the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from agent.fleet.model import FleetState
from agent.metrics.families import Samples, add_health
from agent.metrics.specs import AGENT_SPECS, FLEET_SPECS

log = logging.getLogger("headframe.fleet")


class FleetCollector(Collector):
    def __init__(self, state: FleetState, lock: threading.Lock) -> None:
        self.state, self.lock = state, lock
        self._logged: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        with self.lock:  # references only: health dicts are replaced, never changed in place
            gateways = [
                (g.site, g.gateway, g.health, g.last_seen, g.status, g.health_error) for g in self.state.gateways.values()
            ]
            rejected = dict(self.state.rejected)
        out, fleet = Samples(AGENT_SPECS), Samples(FLEET_SPECS)
        for site, gateway, health, last_seen, status, health_error in gateways:
            ident = (site, gateway)
            fleet.add("headframe_fleet_gateway_online", ident, int(status == "online"))
            fleet.add("headframe_fleet_health_malformed", ident, int(health_error is not None))
            if health is not None:
                self._add(out, site, gateway, health, last_seen)
        fleet.add("headframe_fleet_gateways", (), len(gateways))
        for reason, n in rejected.items():
            fleet.add("headframe_fleet_rejected_messages_total", (reason,), n)
        yield from out.families()
        yield from fleet.families()

    def _add(self, out: Samples, site: str, gateway: str, health: dict[str, Any], last_seen: float | None) -> None:
        try:
            add_health(out, site, gateway, health, last_seen)
        except Exception:  # a bug here must not cost the other gateways their metrics
            if f"{site}/{gateway}" not in self._logged:
                self._logged.add(f"{site}/{gateway}")
                log.exception("fleet metrics: cannot read the health of %s/%s; skipped", site, gateway)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[v6]:PORT`` → (host, port); ValueError in words otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9465")
    return host.strip("[]"), int(port)


def serve(state: FleetState, lock: threading.Lock, host: str, port: int) -> Any:
    """Start the exporter in a background thread; returns the server (``server_port`` is the bound port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(state, lock))
    ProcessCollector(registry=registry)
    server, _thread = start_http_server(port, host, registry)
    return server
