"""Settings of the technician's web page (docs/web.md): off by default, loopback unless TLS."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from config.types import ConfigPath, Duration, StrictModel


class WebTLSSettings(StrictModel):
    """The page's own certificate (the technician's browser verifies it)."""

    cert_file: ConfigPath
    key_file: ConfigPath


class WebSettings(StrictModel):
    """The technician's page, served by the agent itself."""

    enabled: bool = False
    #: Loopback by default: reach it over SSH (``ssh -L 8480:127.0.0.1:8480 gateway``) or set an
    #: address together with ``tls``.
    listen: str = "127.0.0.1"
    port: int = Field(default=8480, ge=1, le=65535)
    #: One line ``scrypt$…`` written by ``headframe web-password FILE`` (never the password itself).
    password_file: ConfigPath | None = None
    tls: WebTLSSettings | None = None
    #: A session ends after this long without a request.
    session_idle: Duration = Field(default=1800.0, ge=60.0, le=86400.0)
    #: Failed logins from one address within ``lockout_window`` before it must wait that long.
    max_failed_logins: int = Field(default=5, ge=1, le=100)
    lockout_window: Duration = Field(default=300.0, ge=10.0, le=86400.0)
    #: The page's language when the browser does not ask (the technician reads Chinese first).
    language: Literal["zh", "en"] = "zh"

    @property
    def is_loopback(self) -> bool:
        if self.listen == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.listen).is_loopback
        except ValueError:
            return False

    @model_validator(mode="after")
    def _safe(self) -> WebSettings:
        if self.enabled and self.password_file is None:
            raise ValueError("'password_file' when enabled (write one with: headframe web-password FILE)")
        if not self.is_loopback and self.tls is None:
            raise ValueError(
                f"a 'tls:' section: {self.listen} is not loopback, and the password and the site's "
                "configuration must not cross a network in clear text"
            )
        return self
