"""Settings of the data spine: identity, buffer, uplink, health, logging."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from config.mapping import MappingSettings
from config.sparkplug import SparkplugSettings
from config.types import ByteSize, ConfigPath, Duration, Ident, StrictModel

Durability = Literal["process_crash", "power_loss"]


class GatewaySettings(StrictModel):
    """Who this gateway is: the site and gateway ids appear in every topic and record."""

    site: Ident
    id: Ident
    #: File holding the per-gateway secret that keys the integrity chain (HMAC-SHA256). Unset:
    #: ``chain.key`` beside the buffer database, created on first start (docs/buffer.md).
    chain_key_file: ConfigPath | None = None


class PerKindDurability(StrictModel):
    """What a committed append survives, per record kind (see docs/buffer.md)."""

    alarm: Literal["power_loss"] = "power_loss"
    event: Durability = "power_loss"
    telemetry: Durability = "process_crash"
    health: Durability = "process_crash"


class PerKindTTL(StrictModel):
    """How long an unsent record may wait before it expires, per kind."""

    alarm: Duration = 180 * 86400.0
    event: Duration = 30 * 86400.0
    telemetry: Duration = 7 * 86400.0
    health: Duration = 86400.0


class BufferSettings(StrictModel):
    """The SQLite store-and-forward queue."""

    path: ConfigPath = Path("/var/lib/headframe/buffer.db")
    max_bytes: ByteSize = Field(default=1024**3, ge=1024 * 1024)
    max_attachment_bytes: ByteSize = Field(default=2 * 1024**2, ge=1024)
    ttl: PerKindTTL = PerKindTTL()
    durability: PerKindDurability = PerKindDurability()
    #: How long the writer gathers records into one transaction.
    flush_interval: Duration = Field(default=0.05, le=5.0)
    #: Longest that committed telemetry/health may sit un-fsynced in the page cache: bounds what a
    #: power cut can take from kinds of process_crash durability (0 = no bound; see docs/buffer.md).
    max_unsynced: Duration = Field(default=5.0, ge=0, le=3600)
    #: Space held back in a file beside the database for the alarms of a full disk (0 = none).
    reserve: ByteSize = Field(default=8 * 1024**2, ge=0, le=1024**3)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: the only place plain MQTT may carry credentials
    (a name is not resolved: a DNS answer must not decide whether a password goes out in clear)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TLSSettings(StrictModel):
    """Broker TLS. The server certificate is always verified against ``ca_file`` (or system CAs)."""

    ca_file: ConfigPath | None = None
    cert_file: ConfigPath | None = None
    key_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _pair(self) -> TLSSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file together (a client certificate needs both)")
        return self


class UplinkSettings(StrictModel):
    """The MQTT session to the site or cloud broker."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 means 1883, or 8883 with TLS")
    tls: TLSSettings | None = None
    username: str | None = None
    password_file: ConfigPath | None = None
    client_id: str | None = None
    topic_prefix: Ident = "headframe"
    qos: Literal[1, 2] = 1
    inflight: int = Field(default=200, ge=1, le=65535)
    keepalive: Duration = Field(default=30.0, ge=5.0)
    connect_timeout: Duration = 10.0
    reconnect_min: Duration = 1.0
    reconnect_max: Duration = 60.0
    #: Optional cap on messages per second while draining a backlog (protects thin links).
    max_rate: float | None = Field(default=None, gt=0)
    #: A platform's own topics and payloads, per record kind (docs/mqtt.md, "Platform mappings").
    mapping: MappingSettings | None = None
    #: Wire format of the records: ``json`` (the documented default, docs/mqtt.md) or
    #: ``sparkplug`` (Sparkplug B births/data/deaths for readings; docs/mqtt.md, "Sparkplug B").
    format: Literal["json", "sparkplug"] = "json"
    sparkplug: SparkplugSettings | None = None

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @model_validator(mode="after")
    def _secure_off_loopback(self) -> UplinkSettings:
        if not self.is_loopback and self.tls is None:
            raise ValueError(
                f"a 'tls:' section: broker {self.host} is not on loopback, and credentials and site data "
                "must not cross a network in clear text"
            )
        if self.password_file is not None and self.username is None:
            raise ValueError("'username' together with 'password_file'")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max at least reconnect_min")
        if self.sparkplug is not None and self.format != "sparkplug":
            raise ValueError("'format: sparkplug' together with a 'sparkplug:' section (or remove the section)")
        if self.mapping is not None and self.format == "sparkplug":
            raise ValueError(
                "either 'format: sparkplug' or a 'mapping:' section: platform mappings shape JSON messages "
                "and Sparkplug B has its own (remove one of them)"
            )
        return self


class HealthSettings(StrictModel):
    """The gateway's own health record."""

    interval: Duration = Field(default=30.0, ge=0.2)
    disk_path: ConfigPath | None = None


class ContinuitySettings(StrictModel):
    """Gap records and the gateway-dark alarm (docs/evidence.md, "Gaps and their causes")."""

    #: Energy drawn during a gap (summed over all meters, kWh) above which the
    #: ``gateway_dark_while_site_ran`` alarm is raised. A little above the resolution of a
    #: typical meter (0.01 kWh), so rounding alone never raises it.
    dark_site_kwh: float = Field(default=0.05, ge=0)
    #: Longest wait after start for every energy meter's first good reading; a meter still
    #: silent then is listed as ``unknown`` (the wait is also capped at 2 poll intervals + 10 s).
    energy_timeout: Duration = Field(default=60.0, ge=1.0, le=600.0)
    #: The continuity state file is rewritten at most this often (bound on its staleness
    #: after a kill or power cut), and always at a clean stop.
    state_interval: Duration = Field(default=5.0, ge=0.2, le=300.0)
    #: A wall clock that moves this much more (or less) than the monotonic clock is a jump.
    clock_jump_s: Duration = Field(default=2.0, ge=0.5)


class LoggingSettings(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``auto`` uses journald when running under systemd and the module is installed.
    journald: Literal["auto", "on", "off"] = "auto"


class ControlSettings(StrictModel):
    """The local control socket (``headframe alarms``; docs/rules.md, "Alarm life")."""

    enabled: bool = True
    #: Unix socket, mode 0660, group of the agent: members of that group may use the CLI.
    socket: ConfigPath = Path("/run/headframe/control.sock")
