"""Opening an OPC UA session: the server's certificate checked against what the gateway trusts
before the session (and any password) goes out; every failure a ``DriverError`` in words.

The trust decision is ours, not the library's: a certificate equal to
``security.server_certificate`` or to a file in ``security.trust_dir``, or directly signed by
a CA certificate there, and within its validity dates. Anything else is refused with the
certificate's subject and fingerprint, so a technician can tell a replaced PLC from an impostor.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from config.opcua import OpcUaLogin, OpcUaSecurity
from drivers.errors import DriverError, Unreachable

CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")
#: statuses meaning "the server does not accept the gateway's certificate"
_CLIENT_CERT_REFUSED = {
    "BadCertificateUntrusted",
    "BadSecurityChecksFailed",
    "BadCertificateInvalid",
    "BadCertificateUriInvalid",
    "BadCertificateUseNotAllowed",
    "BadCertificateTimeInvalid",
}
_LOGIN_REFUSED = {"BadUserAccessDenied", "BadIdentityTokenRejected", "BadIdentityTokenInvalid"}


@dataclass(frozen=True)
class Target:
    """Where and how to connect; ``label`` (the device id) starts no message: the poller adds it."""

    endpoint: str
    security: OpcUaSecurity
    login: OpcUaLogin | None = None
    timeout: float = 5.0


def load_cert(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes (the first of a DER chain, as servers send them)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    cert = uacrypto.x509_from_der(data)
    if cert is None:
        raise ValueError("empty certificate")
    return cert


def describe(cert: x509.Certificate) -> str:
    """Subject and SHA-256 fingerprint prefix: what a technician compares with the PLC's screen."""
    fp = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    return f"'{cert.subject.rfc4514_string()}' (SHA-256 {fp[:23]}…)"


def trusted(sec: OpcUaSecurity) -> list[x509.Certificate]:
    """The configured server certificate and every certificate file in the trust directory."""
    paths: list[Path] = []
    if sec.server_certificate is not None:
        paths.append(sec.server_certificate)
    if sec.trust_dir is not None:
        try:
            paths += sorted(p for p in sec.trust_dir.iterdir() if p.suffix.lower() in CERT_SUFFIXES)
        except OSError as exc:
            raise Unreachable(f"security.trust_dir {sec.trust_dir}: cannot read ({exc.strerror})") from None
    certs = []
    for path in paths:
        try:
            certs.append(load_cert(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise Unreachable(f"trusted certificate {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return certs


def _may_issue(ca: x509.Certificate, now: datetime.datetime) -> bool:
    """A CA certificate (basic constraints CA, key usage keyCertSign when present) within its dates."""
    try:
        if not ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        if not ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            return False
    except x509.ExtensionNotFound:
        pass
    return ca.not_valid_before_utc <= now <= ca.not_valid_after_utc


def check_trust(cert: x509.Certificate, pins: Sequence[x509.Certificate], now: datetime.datetime | None = None) -> None:
    """Raise ``Unreachable`` unless ``cert`` is pinned or directly signed by a trusted CA, and in date."""
    now = now or datetime.datetime.now(datetime.UTC)
    ok = any(cert == pin for pin in pins)
    if not ok:
        for pin in pins:
            if not _may_issue(pin, now):  # a pinned server certificate, or an expired CA, vouches for nobody
                continue
            try:
                cert.verify_directly_issued_by(pin)
                ok = True
                break
            except (ValueError, TypeError, InvalidSignature):
                continue
    if not ok:
        raise Unreachable(
            f"server certificate not trusted: {describe(cert)} is neither security.server_certificate nor in "
            "security.trust_dir — if this is the right server, save its certificate there "
            "(headframe probe opcua URL --save-cert FILE) and compare the fingerprint with the server's"
        )
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Unreachable(
            f"server certificate {describe(cert)} is outside its validity "
            f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}): renew it on the server, "
            "or check the gateway's clock"
        )


def read_password(login: OpcUaLogin) -> str:
    """The password from its file or environment variable; errors name the source, never the value."""
    if login.password_env is not None:
        value = os.environ.get(login.password_env)
        if not value:
            raise Unreachable(f"login.password_env: environment variable {login.password_env} is not set")
        return value
    assert login.password_file is not None
    try:
        return login.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise Unreachable(f"login.password_file {login.password_file}: cannot read ({exc.strerror})") from None


def _status_name(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    return ua.StatusCode(ua.UInt32(code)).name if isinstance(code, int) else None


def explain(exc: BaseException, target: Target) -> DriverError:
    """A library or socket error during connect, as the DriverError a technician can act on."""
    if isinstance(exc, DriverError):
        return exc
    name = _status_name(exc)
    if name in _CLIENT_CERT_REFUSED:
        return Unreachable(
            f"server refused the gateway's certificate ({name}): add {target.security.certificate} to the server's "
            f"trusted clients, and check security.application_uri matches the certificate's URI"
        )
    if name in _LOGIN_REFUSED:
        user = target.login.username if target.login else "anonymous"
        return Unreachable(f"server refused the login of user '{user}' ({name}): check login.username and the password")
    if name is not None:
        return Unreachable(f"session refused by {target.endpoint}: {name}")
    if isinstance(exc, TimeoutError):
        return Unreachable(f"cannot connect to {target.endpoint} (no answer within {target.timeout:g}s)")
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return Unreachable(f"cannot connect to {target.endpoint} (connection refused: is the server running, is the port right?)")
    if isinstance(exc, OSError):
        return Unreachable(f"cannot connect to {target.endpoint} ({exc.strerror or exc})")
    return Unreachable(f"cannot connect to {target.endpoint} ({type(exc).__name__}: {exc})")


async def server_certificate(target: Target) -> x509.Certificate:
    """The certificate the server offers for the configured policy and mode (asked in clear, GetEndpoints)."""
    sec = target.security
    probe = Client(target.endpoint, timeout=target.timeout)
    try:
        endpoints = await asyncio.wait_for(probe.connect_and_get_server_endpoints(), target.timeout + 1)
    except Exception as exc:
        raise explain(exc, target) from None
    mode = getattr(ua.MessageSecurityMode, sec.mode)
    uri = security_policies.SecurityPolicyBasic256Sha256.URI
    for ep in endpoints:
        if ep.SecurityMode == mode and ep.SecurityPolicyUri == uri and ep.ServerCertificate:
            return load_cert(ep.ServerCertificate)
    offered = sorted({f"{ep.SecurityPolicyUri.rpartition('#')[2]}/{ep.SecurityMode.name}" for ep in endpoints})
    raise Unreachable(
        f"server offers no {sec.policy}/{sec.mode} endpoint (it offers {', '.join(offered)}): "
        "change security.policy/mode or the server's settings"
    )


async def open_client(target: Target, *, watchdog: float = 1.0) -> Client:
    """A connected client (session active) or a DriverError; nothing is sent before trust is checked."""
    sec = target.security
    client = Client(target.endpoint, timeout=target.timeout, watchdog_intervall=watchdog)
    client.application_uri = sec.application_uri
    if target.login is not None:
        client.set_user(target.login.username)
        client.set_password(read_password(target.login))
    if sec.policy != "None":
        cert = await server_certificate(target)
        check_trust(cert, trusted(sec))
        assert sec.certificate is not None and sec.private_key is not None
        try:
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256,
                str(sec.certificate),
                str(sec.private_key),
                server_certificate=uacrypto.der_from_x509(cert),
                mode=getattr(ua.MessageSecurityMode, sec.mode),
            )
        except (OSError, ValueError) as exc:
            raise Unreachable(
                f"security.certificate/private_key ({sec.certificate}, {sec.private_key}): cannot load "
                f"({getattr(exc, 'strerror', None) or exc})"
            ) from None
    try:
        await asyncio.wait_for(client.connect(), target.timeout + 1)
    except Exception as exc:
        await close_quietly(client)
        raise explain(exc, target) from None
    return client


async def close_quietly(client: Client, timeout: float = 2.0) -> None:
    """End the session if the server is there to hear it; a dead server costs at most ``timeout``."""
    try:
        await asyncio.wait_for(client.disconnect(), timeout)
    except Exception:  # the server is gone or the session already dead: nothing to release
        client.disconnect_socket()
