"""paho driven from the asyncio loop: no network thread, no cross-thread hand-off per message.

paho announces every socket change (opened, closed, has bytes to write, has nothing left to
write) through its ``on_socket_*`` callbacks; the bridge answers by registering the socket with
the event loop for reading or writing. What the session is waiting for lives in two futures:
``connected`` (the CONNACK reason code) and ``disconnected`` (why the connection ended).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("headframe.uplink")

#: paho's keepalive and timeout bookkeeping (``loop_misc``) runs this often.
MISC_INTERVAL_S = 1.0


class Bridge:
    """Watches one paho client's socket on the event loop and turns its callbacks into futures."""

    def __init__(self, client: mqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.connected: asyncio.Future[ReasonCode] = loop.create_future()
        self.disconnected: asyncio.Future[str] = loop.create_future()
        #: called with the message id of every acknowledged publish (PUBACK at QoS 1)
        self.on_ack: Callable[[int], None] | None = None
        #: called with (topic, payload, retain) of every message the broker delivers (the command topic);
        #: paho calls it from ``loop_read``, which runs on the loop
        self.on_message: Callable[[str, bytes, bool], None] | None = None
        self._loop_thread = threading.get_ident()
        self._sock: Any = None
        self._writing = False
        self._misc: asyncio.Task[None] | None = None
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    # ------------------------------------------------ paho -> event loop
    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """paho calls some hooks from ``connect()``, which runs in an executor thread."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._attach, sock)

    def _socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho closes the socket right after this returns: unregister now, on whichever thread.
        if threading.get_ident() == self._loop_thread:
            self._detach(sock)
        else:
            self.loop.call_soon_threadsafe(self._detach, sock)

    def _register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock, True)

    def _unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock, False)

    def _attach(self, sock: Any) -> None:
        if sock.fileno() < 0:  # closed before the loop got to it (connect failed right after opening)
            return
        self._sock = sock
        self.loop.add_reader(sock, self._readable)
        self._misc = self.loop.create_task(self._misc_loop(), name="mqtt-misc")

    def _detach(self, sock: Any) -> None:
        if sock is not self._sock:
            return
        if sock.fileno() >= 0:
            self.loop.remove_reader(sock)
            if self._writing:
                self.loop.remove_writer(sock)
        self._writing = False
        self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, sock: Any, want: bool) -> None:
        if sock is not self._sock or want == self._writing or sock.fileno() < 0:
            return
        if want:
            self.loop.add_writer(sock, self._writable)
        else:
            self.loop.remove_writer(sock)
        self._writing = want

    def _readable(self) -> None:
        rc = self.client.loop_read()
        sock = self._sock
        # TLS may hold decrypted bytes the selector cannot see: read them now, or they wait
        # for the next packet from the broker (a PUBACK stalls until the keepalive ping).
        while rc == mqtt.MQTT_ERR_SUCCESS and isinstance(sock, ssl.SSLSocket) and sock is self._sock and sock.pending():
            rc = self.client.loop_read()

    def _writable(self) -> None:
        self.client.loop_write()

    async def _misc_loop(self) -> None:
        """Keepalive pings and the ping timeout (paho's ``loop_misc``)."""
        while self.client.loop_misc() == mqtt.MQTT_ERR_SUCCESS:
            await asyncio.sleep(MISC_INTERVAL_S)

    # ------------------------------------------------ paho events -> futures
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties: Any) -> None:
        self._on_loop(self._connack, reason_code)

    def _connack(self, reason_code: ReasonCode) -> None:
        if not self.connected.done():
            self.connected.set_result(reason_code)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties: Any) -> None:
        self._on_loop(self.mark_lost, f"{reason_code} (code {reason_code.value})")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        if self.on_ack is not None:
            self.on_ack(mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is None:
            return
        try:
            self.on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # a handler's bug must not take the session down
            log.exception("uplink: inbound message handler failed")

    # ------------------------------------------------------------- control
    def mark_lost(self, reason: str) -> None:
        """The connection is over (paho said so, or a publish found it gone)."""
        if not self.disconnected.done():
            self.disconnected.set_result(reason)

    @property
    def lost(self) -> bool:
        return self.disconnected.done()

    def close(self) -> None:
        """Stop watching and close the socket without a DISCONNECT packet, so the broker
        publishes the will for a session that was lost (or never completed)."""
        sock = self.client.socket()
        if sock is not None:
            self._detach(sock)
            try:
                sock.close()
            except OSError as exc:  # already reset by the peer: nothing left to close
                log.debug("uplink: closing the socket: %s", exc)
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        self.mark_lost("closed by the gateway")

    async def disconnect(self, timeout: float) -> None:
        """Clean end: DISCONNECT (the broker drops the will), then close whatever is left."""
        if not self.lost:
            self.client.disconnect()
            try:
                await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)
            except TimeoutError:
                log.debug("uplink: broker did not close after DISCONNECT within %.1fs; closing", timeout)
        self.close()
