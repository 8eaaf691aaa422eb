"""Settings of the agent's Prometheus exporter (docs/metrics.md): off by default, loopback unless opted in or mTLS."""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from config.types import ConfigPath, StrictModel


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (the only places an unauthenticated listener is safe)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class MetricsTLSSettings(StrictModel):
    """HTTPS for ``/metrics`` (prometheus_client's own TLS); with ``client_ca_file``, mutual TLS."""

    cert_file: ConfigPath
    key_file: ConfigPath
    #: Require a client certificate signed by this CA: the scraping Prometheus is authenticated,
    #: and then a non-loopback ``listen`` needs no ``allow_remote``.
    client_ca_file: ConfigPath | None = None


class MetricsSettings(StrictModel):
    """The ``/metrics`` listener. Its values are the health record's (``health.interval`` fresh)."""

    enabled: bool = False
    #: Loopback by default: the exporter has no authentication. A Prometheus on another host
    #: reaches it through an SSH tunnel or a local reverse proxy, or set an address together
    #: with ``allow_remote: true`` on a network where anyone who can reach the port may read it.
    listen: str = "127.0.0.1"
    #: 9464: unused by the agent's other listeners (web page 8480); change it if taken.
    port: int = Field(default=9464, ge=1, le=65535)
    #: The explicit opt-in to serve the (unauthenticated) metrics on a non-loopback address.
    allow_remote: bool = False
    tls: MetricsTLSSettings | None = None

    @property
    def authenticated(self) -> bool:
        """Only mutual TLS authenticates the scraper; plain TLS only encrypts."""
        return self.tls is not None and self.tls.client_ca_file is not None

    @model_validator(mode="after")
    def _safe(self) -> MetricsSettings:
        if not is_loopback(self.listen) and not self.allow_remote and not self.authenticated:
            raise ValueError(
                f"'allow_remote: true' to listen on {self.listen}: without 'tls.client_ca_file' the exporter "
                "authenticates no one, so anyone who reaches that address reads the gateway's metrics (or keep "
                "listen: 127.0.0.1 and scrape through an SSH tunnel or reverse proxy)"
            )
        return self
