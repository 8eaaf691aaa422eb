"""Why a connection attempt or a session failed, as types: callers branch on the class, never on text.

Each class names the uplink ``state`` it leads to, so health and the fleet view show what an
operator must fix (credentials, certificates) apart from what only needs waiting (network).
"""

from __future__ import annotations

from typing import ClassVar

#: CONNACK reason codes (MQTT 5 numbering) that mean "these credentials are not accepted".
#: paho reports MQTT 3.1.1 return codes in the same numbering: 4 (bad user name or password)
#: arrives as 134, 5 (not authorised) as 135. 140 is MQTT 5 "bad authentication method".
AUTH_REASON_CODES = frozenset({134, 135, 140})


class UplinkError(Exception):
    """Base of every uplink failure; ``state`` is what health reports while it lasts."""

    state: ClassVar[str] = "backoff"


class BrokerUnreachable(UplinkError):
    """No TCP connection to the broker (DNS, refused port, no route)."""


class ConnectTimeout(UplinkError):
    """TCP, TLS or CONNACK did not complete within ``uplink.connect_timeout``."""


class TlsFailed(UplinkError):
    """The TLS handshake failed (untrusted certificate, wrong host name, protocol mismatch)."""

    state: ClassVar[str] = "tls_failed"


class ConnectionRefused(UplinkError):
    """The broker answered CONNECT with a failure reason code (or closed before answering: None)."""

    def __init__(self, message: str, reason_code: int | None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class AuthRefused(ConnectionRefused):
    """The broker refused the credentials: waiting will not help, the config must change."""

    state: ClassVar[str] = "auth_failed"


class ConnectionLost(UplinkError):
    """An established session ended without being asked to (keepalive, reset, broker gone)."""


def refusal(reason_code: int | None, where: str, reason_name: str) -> ConnectionRefused:
    """The exception for a failed CONNACK, chosen by its reason code (MQTT 5 numbering)."""
    if reason_code in AUTH_REASON_CODES:
        return AuthRefused(
            f"broker {where} refused the credentials ({reason_name}, code {reason_code}); "
            "check uplink.username and uplink.password_file",
            reason_code,
        )
    return ConnectionRefused(f"broker {where} refused the connection ({reason_name}, code {reason_code})", reason_code)
