"""A real asyncua OPC UA server for tests, on its own thread and event loop.

The test (or an agent subprocess) talks to it over TCP like to a PLC. ``stop()`` then a new
``OpcUaServer`` on the same port is a server restart: sessions and subscriptions are gone.
Certificates are made with ``cryptography`` (``make_cert``), self-signed like most PLCs'.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NS_URI = "urn:headframe:test-plc"


@dataclass(frozen=True)
class CertFiles:
    cert: Path  # DER
    key: Path  # PEM


def make_cert(directory: Path, name: str, uri: str, *, client: bool) -> CertFiles:
    """A self-signed application instance certificate (DER) and its key (PEM), as OPC UA wants them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(directory / f"{name}.der", directory / f"{name}.key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class _Users(UserManager):
    """Only these users, with these passwords."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None) -> Any:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaServer:
    """An asyncua server with variables ``ns=2;s=<name>`` under an object ``ns=2;s=Plant``.

    ``secure`` (server certificate files) offers only Basic256Sha256 SignAndEncrypt; ``users``
    (name → password) refuses every other login, anonymous included.
    """

    def __init__(
        self, port: int, variables: dict[str, Any], *, secure: CertFiles | None = None, users: dict[str, str] | None = None
    ) -> None:
        self.port, self.variables, self.secure, self.users = port, dict(variables), secure, users
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/headframe/"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"opcua-{port}")
        self._server: Server | None = None
        self._nodes: dict[str, Any] = {}

    def _call(self, coro: Any, timeout: float = 20) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def start(self) -> OpcUaServer:
        return self.prepare().listen()

    def prepare(self) -> OpcUaServer:
        """Build the address space (the slow part: seconds on a loaded machine) without listening."""
        self._thread.start()
        self._call(self._prepare())
        return self

    def listen(self) -> OpcUaServer:
        """Open the port: clients can connect from now on."""
        assert self._server is not None
        self._call(self._server.start())
        return self

    def pause(self) -> None:
        """Stop listening and close every connection with its session and subscriptions: on the
        wire, a server going down for a restart (``listen()`` brings it back, same address space)."""
        assert self._server is not None
        self._call(self._server.stop())

    async def _prepare(self) -> None:
        server = Server(user_manager=_Users(self.users) if self.users is not None else None)
        await server.init()
        server.disable_clock()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Headframe test PLC")
        if self.secure is not None:
            await server.load_certificate(str(self.secure.cert))
            await server.load_private_key(str(self.secure.key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        idx = await server.register_namespace(NS_URI)
        plant = await server.nodes.objects.add_object(ua.NodeId("Plant", idx), "Plant")
        for name, value in self.variables.items():
            self._nodes[name] = await plant.add_variable(ua.NodeId(name, idx), name, value)
        self._server = server

    def set(self, name: str, value: Any) -> None:
        """Write a variable's value on the server side (what the PLC program would do)."""
        self._call(self._nodes[name].write_value(value))

    def set_status(self, name: str, value: Any, status: int) -> None:
        """Write a value with a status code (e.g. uncertain or bad from a failed sensor)."""
        dv = ua.DataValue(ua.Variant(value, ua.VariantType.Double), StatusCode=ua.StatusCode(ua.UInt32(status)))
        self._call(self._nodes[name].write_value(dv))

    async def _cancel_rest(self) -> None:
        """The server's session and subscription loops outlive ``stop()``: end them like a power cut."""
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._server is not None:
            self._call(self._server.stop())
            self._server = None
        self._call(self._cancel_rest())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
