"""The agent's ``/metrics`` listener: the last health record, as Prometheus families (docs/metrics.md).

The daemon hands every health record it builds to ``MetricsExporter.update``; a scrape reads
that record, so the metrics and the health record never disagree and a scrape costs the agent
no extra work on its event loop (prometheus_client serves from its own thread).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from agent.metrics.families import Samples, add_health
from agent.metrics.specs import AGENT_SPECS
from config.metrics import MetricsSettings

log = logging.getLogger("headframe.metrics")


class HealthRecordCollector(Collector):
    """Yields the families of the last health record handed to ``update`` (none before the first)."""

    def __init__(self, site: str, gateway: str) -> None:
        self.site, self.gateway = site, gateway
        self._last: tuple[dict[str, Any], float] | None = None

    def update(self, payload: dict[str, Any], built_at: float) -> None:
        self._last = (payload, built_at)  # one reference swap: a scrape sees the old or the new record

    def collect(self) -> Iterator[Metric]:
        out = Samples(AGENT_SPECS)
        last = self._last
        if last is not None:
            add_health(out, self.site, self.gateway, last[0], last[1])
        yield from out.families()


class MetricsExporter:
    """Starts and stops the listener; a listener that cannot start is logged and the agent runs on."""

    def __init__(self, settings: MetricsSettings, site: str, gateway: str) -> None:
        self.settings = settings
        self.collector = HealthRecordCollector(site, gateway)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> bool:
        if not self.settings.enabled:
            return False
        where = f"{self.settings.listen}:{self.settings.port}"
        tls = self.settings.tls
        try:
            self._server, self._thread = start_http_server(
                self.settings.port,
                self.settings.listen,
                self.registry,
                certfile=str(tls.cert_file) if tls else None,
                keyfile=str(tls.key_file) if tls else None,
                client_cafile=str(tls.client_ca_file) if tls and tls.client_ca_file else None,
                client_auth_required=bool(tls and tls.client_ca_file),
            )
        except OSError as exc:  # ssl.SSLError and an unreadable certificate file are OSErrors too
            if isinstance(exc, ssl.SSLError) or exc.filename:
                why = getattr(exc, "reason", None) or exc.strerror or str(exc)
                self.error = f"TLS: {exc.filename or 'certificate, key or CA'}: {why}"
                fix = "check metrics.tls (cert_file, key_file, client_ca_file)"
            else:
                self.error = f"cannot listen on {where}: {exc.strerror or exc}"
                fix = "set metrics.port to a free port"
            log.error("metrics: %s; %s (the agent runs on without /metrics)", self.error, fix)
            return False
        log.info("metrics: serving %s://%s/metrics", "https" if tls else "http", where)
        return True

    def update(self, payload: dict[str, Any]) -> None:
        self.collector.update(payload, time.time())

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
