"""Only a CA within its dates vouches for a server certificate: not a pinned leaf, not an expired CA."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.errors import DriverError
from drivers.opcua_session import check_trust

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    days: tuple[int, int] = (-10, 365),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    iname, ikey = issuer if issuer else (name, key)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, iname)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(ikey, hashes.SHA256())
    )


def test_a_ca_vouches_but_a_pinned_leaf_or_an_expired_ca_does_not() -> None:
    ca_key, leaf_key, srv_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = cert("site-ca", ca_key, None, ca=True)
    server = cert("plc-1", srv_key, ("site-ca", ca_key), ca=False)
    check_trust(server, [ca], NOW)  # signed by a trusted CA: accepted

    leaf = cert("plc-2", leaf_key, None, ca=False)  # another PLC's own certificate, pinned
    minted = cert("rogue", srv_key, ("plc-2", leaf_key), ca=False)
    with pytest.raises(DriverError, match="not trusted"):
        check_trust(minted, [leaf], NOW)

    old_ca = cert("old-ca", ca_key, None, ca=True, days=(-400, -30))
    by_old = cert("plc-3", srv_key, ("old-ca", ca_key), ca=False)
    with pytest.raises(DriverError, match="not trusted"):
        check_trust(by_old, [old_ca], NOW)
