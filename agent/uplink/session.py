"""One connection attempt and the session it yields: client, TLS, credentials, will, CONNACK.

A session is used once: when it ends, it is dropped whole with everything it had in flight,
and the records it did not get acknowledged are leased again from the buffer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.uplink.bridge import Bridge
from agent.uplink.errors import BrokerUnreachable, ConnectionRefused, ConnectTimeout, TlsFailed, refusal
from config.spine import UplinkSettings

log = logging.getLogger("headframe.uplink")


@dataclass(frozen=True)
class Will:
    """The retained message the broker publishes if this session dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    #: the status will is retained; a Sparkplug NDEATH must not be
    retain: bool = True


def read_password(cfg: UplinkSettings) -> str | None:
    """The broker password from ``uplink.password_file`` (first line; never logged)."""
    if cfg.password_file is None:
        return None
    try:
        return cfg.password_file.read_bytes().decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        # the codec's message quotes a byte of the secret: name the file and the fix instead
        raise ValueError(f"uplink.password_file {cfg.password_file} is not UTF-8 text; write the password as UTF-8") from None


def make_client(cfg: UplinkSettings, client_id: str, will: Will, password: str | None) -> mqtt.Client:
    """A paho client for one attempt. TLS always verifies the broker (CERT_REQUIRED); the config
    already refuses a broker off loopback without TLS (config/spine.py)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    # Our own window bounds what is in flight. paho's own limit is switched off: with one
    # set, every PUBACK makes paho scan all outstanding messages (O(window) per ack).
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    if cfg.username:
        client.username_pw_set(cfg.username, password)
    tls = cfg.tls
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.connect_timeout = cfg.connect_timeout
    return client


class Session:
    """A connected MQTT session: publish, learn of its end, end it cleanly or drop it."""

    def __init__(self, bridge: Bridge, client_id: str, where: str) -> None:
        self.bridge = bridge
        self.client_id = client_id
        self.where = where
        self._handlers: dict[str, Callable[[str, bytes, bool], None]] = {}
        self._first: Callable[[str, bytes, bool], None] | None = None

    @property
    def lost(self) -> bool:
        return self.bridge.lost

    @property
    def loss_reason(self) -> str | None:
        return self.bridge.disconnected.result() if self.bridge.lost else None

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.bridge.client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topic: str, on_message: Callable[[str, bytes, bool], None]) -> None:
        """Receive ``topic`` (exact, no wildcards) at QoS 1 for this session (clean session:
        again at each connect). A message on a topic nobody subscribed to goes to the first
        handler, which counts it (the command inbox's ``wrong_topic``)."""
        self._handlers[topic] = on_message
        if self._first is None:
            self._first = on_message
        self.bridge.on_message = self._dispatch
        self.bridge.client.subscribe(topic, qos=1)

    def _dispatch(self, topic: str, payload: bytes, retain: bool) -> None:
        handler = self._handlers.get(topic, self._first)
        if handler is not None:
            handler(topic, payload, retain)

    async def end(self, topic: str, payload: bytes, timeout: float) -> None:
        """Clean end: publish a last retained message, wait (bounded) for its PUBACK, DISCONNECT."""
        if not self.lost:
            info = self.publish(topic, payload, qos=1, retain=True)
            deadline = self.bridge.loop.time() + timeout
            while not info.is_published() and not self.lost and self.bridge.loop.time() < deadline:
                await asyncio.sleep(0.02)
        await self.bridge.disconnect(timeout)

    def drop(self) -> None:
        """End without DISCONNECT: the broker publishes the will."""
        self.bridge.close()


async def connect(cfg: UplinkSettings, client_id: str, will: Will, password: str | None) -> Session:
    """One attempt; raises a subclass of :class:`UplinkError` that says why it failed."""
    loop = asyncio.get_running_loop()
    host, port = cfg.host, cfg.effective_port
    where = f"{host}:{port}"
    client = make_client(cfg, client_id, will, password)
    bridge = Bridge(client, loop)
    try:
        # DNS, TCP connect and the TLS handshake block: they run in a thread, bounded by
        # connect_timeout. Everything after that is driven by the loop.
        await loop.run_in_executor(None, client.connect, host, port, int(cfg.keepalive))
    except ssl.SSLError as exc:  # includes certificate verification failures
        bridge.close()
        raise TlsFailed(f"TLS handshake with {where} failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        bridge.close()
        raise ConnectTimeout(f"broker {where} did not complete TCP/TLS set-up within {cfg.connect_timeout}s") from exc
    except OSError as exc:
        bridge.close()
        raise BrokerUnreachable(f"cannot reach broker {where}: {exc.strerror or exc}") from exc
    either: list[asyncio.Future[Any]] = [bridge.connected, bridge.disconnected]
    done, _ = await asyncio.wait(either, timeout=cfg.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
    if bridge.connected.done():
        code = bridge.connected.result()
        if code.is_failure:
            bridge.close()
            raise refusal(code.value, where, str(code))
        return Session(bridge, client_id, where)
    bridge.close()
    if done:
        raise ConnectionRefused(
            f"broker {where} closed the connection before answering CONNECT ({bridge.disconnected.result()})", None
        )
    raise ConnectTimeout(f"broker {where} did not answer CONNECT within {cfg.connect_timeout}s")
