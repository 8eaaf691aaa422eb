"""MQTT uplink: leases records from the buffer, publishes at QoS 1, acks on PUBACK.

One paho client per connection attempt: when a session dies, the client and everything it
had in flight are dropped and the unacknowledged records are leased again from the buffer,
so the buffer is the only source of truth (at least once, no hidden second queue).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import ssl
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from agent.backoff import Backoff
from agent.version import VERSION
from buffer.boundary import Buffer
from buffer.record import Kind, StoredRecord
from config.schema import Settings

log = logging.getLogger("headframe.uplink")

#: How long a stopping agent keeps draining before it leaves the rest in the buffer.
SHUTDOWN_GRACE_S = 2.0

_AUTH_CODES = {"Not authorized", "Bad user name or password", "Bad username or password"}


def iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(t)) + f"{int(t * 1000) % 1000:03d}Z"


# --- JSON body: on the buffer branch only; replaced by agent/uplink/formatters.py (JsonFormatter) at merge.
def json_body(rec: StoredRecord) -> bytes:
    """Today's wire format: the stored document, with each attachment's data added in base64."""
    if not rec.attachments:
        return rec.doc
    doc = orjson.loads(rec.doc)
    for meta, att in zip(doc.get("attachments", []), rec.attachments, strict=False):
        meta["data"] = base64.b64encode(att.data).decode()
    return orjson.dumps(doc)
# --- end JSON body


class Topics:
    """Topic names from the config: ``{prefix}/{site}/{gateway}/...`` (docs/mqtt.md)."""

    def __init__(self, settings: Settings) -> None:
        g = settings.gateway
        self.root = f"{settings.uplink.topic_prefix}/{g.site}/{g.id}/"
        self.status = self.root + "status"
        self._cache: dict[tuple[Kind, str], str] = {}

    def for_record(self, kind: Kind, source: str) -> str:
        key = (kind, source)
        topic = self._cache.get(key)
        if topic is None:
            topic = self._cache[key] = f"{self.root}{kind.value}/{source}"
        return topic


class Uplink:
    """Keeps one MQTT session alive and drains the buffer through it."""

    def __init__(self, settings: Settings, buffer: Buffer) -> None:
        self.settings = settings
        self.cfg = settings.uplink
        self.buffer = buffer
        self.topics = Topics(settings)
        self.state = "connecting"
        self.last_error: str | None = None
        self.connected_since: str | None = None
        self.sent = 0
        self.acked = 0
        self.heartbeat = time.monotonic()
        self._inflight: dict[int, int] = {}
        self._acks: collections.deque[int] = collections.deque()
        self._wake = asyncio.Event()
        self._client: mqtt.Client | None = None
        self._lost = asyncio.Event()
        self._backoff = Backoff(self.cfg.reconnect_min, self.cfg.reconnect_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        self._misc: asyncio.Future[None] | None = None
        self._password = self._read_password()

    def _read_password(self) -> str | None:
        if self.cfg.password_file is None:
            return None
        return self.cfg.password_file.read_text().rstrip("\r\n")

    def wake(self) -> None:
        """New records were committed: the drain loop should look again."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "last_error": self.last_error, "connected_since": self.connected_since,
                "inflight": len(self._inflight), "sent": self.sent, "acked": self.acked}

    # ------------------------------------------------------------ session
    def _status(self, status: str, reason: str | None = None) -> bytes:
        g = self.settings.gateway
        doc: dict[str, Any] = {"status": status, "gateway": g.id, "site": g.site, "version": VERSION}
        if reason:
            doc["reason"] = reason
        if status == "online" or reason == "shutdown":
            doc["since"] = iso_now()
        return orjson.dumps(doc)

    def _make_client(self) -> mqtt.Client:
        cid = self.cfg.client_id or f"headframe-{self.settings.gateway.site}-{self.settings.gateway.id}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
        # Our own window bounds what is in flight. paho's own limit is switched off: with one
        # set, every PUBACK makes paho scan all outstanding messages (O(window) per ack).
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.will_set(self.topics.status, self._status("offline", "connection lost"), qos=1, retain=True)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self._password)
        tls = self.cfg.tls
        if tls is not None:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.connect_timeout = self.cfg.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # paho is driven from the event loop (add_reader/add_writer), so its callbacks run on the
    # loop thread: no network thread, no cross-thread hand-off per message.
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connack_code = reason_code
        self._connack_event.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._lost.set()
        self._wake.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self._acks.append(mid)
        self._wake.set()

    # ---------------------------------------------------- asyncio <-> paho
    def _attach(self, client: mqtt.Client) -> None:
        """Let the event loop drive paho's socket: read when readable, write when needed."""
        assert self._loop is not None
        sock = client.socket()
        assert sock is not None
        self._sock = sock
        self._loop.add_reader(sock, self._readable, client)
        self._misc = asyncio.ensure_future(self._misc_loop(client))
        self._want_write(client)

    def _readable(self, client: mqtt.Client) -> None:
        rc = client.loop_read()
        sock = client.socket()
        # TLS may hold decrypted bytes the selector cannot see: read them now.
        while rc == mqtt.MQTT_ERR_SUCCESS and sock is not None and getattr(sock, "pending", lambda: 0)():
            rc = client.loop_read()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._lost.set()
            self._wake.set()
        else:
            self._want_write(client)

    def _writable(self, client: mqtt.Client) -> None:
        client.loop_write()
        self._want_write(client)

    def _want_write(self, client: mqtt.Client) -> None:
        assert self._loop is not None
        sock = client.socket()
        if sock is None:
            return
        if client.want_write() and not self._writing:
            self._loop.add_writer(sock, self._writable, client)
            self._writing = True
        elif not client.want_write() and self._writing:
            self._loop.remove_writer(sock)
            self._writing = False

    async def _misc_loop(self, client: mqtt.Client) -> None:
        """Keepalive pings and timeouts (paho's loop_misc), once a second."""
        while True:
            await asyncio.sleep(1.0)
            if client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                self._lost.set()
                self._wake.set()
                return
            self._want_write(client)

    def _detach(self) -> None:
        assert self._loop is not None
        if getattr(self, "_misc", None) is not None:
            self._misc.cancel()
            self._misc = None
        sock = getattr(self, "_sock", None)
        if sock is not None:
            self._loop.remove_reader(sock)
            if self._writing:
                self._loop.remove_writer(sock)
            self._sock = None
        self._writing = False

    async def _connect(self) -> mqtt.Client | None:
        """One attempt; on failure, state and last_error say why (auth, TLS, refused, ...)."""
        loop = asyncio.get_running_loop()
        client = self._make_client()
        self._connack_event = asyncio.Event()
        self._lost = asyncio.Event()
        host, port = self.cfg.host, self.cfg.effective_port
        try:
            await loop.run_in_executor(None, client.connect, host, port, int(self.cfg.keepalive))
        except ssl.SSLError as exc:
            self._fail("tls_failed", f"TLS handshake with {host}:{port} failed: {exc.reason or exc}")
            return None
        except OSError as exc:
            self._fail("backoff", f"cannot reach broker {host}:{port}: {exc.strerror or exc}")
            return None
        self._attach(client)
        try:
            await asyncio.wait_for(self._connack_event.wait(), timeout=self.cfg.connect_timeout)
        except TimeoutError:
            self._drop(client)
            self._fail("backoff", f"broker {host}:{port} did not answer CONNECT within {self.cfg.connect_timeout}s")
            return None
        code = self._connack_code
        if code.is_failure:
            self._drop(client)
            text = str(code)
            if text in _AUTH_CODES or getattr(code, "value", 0) in (4, 5, 134, 135):
                self._fail("auth_failed", f"broker {host}:{port} refused the credentials ({text}); check "
                           "uplink.username and uplink.password_file")
            else:
                self._fail("backoff", f"broker {host}:{port} refused the connection ({text})")
            return None
        client.publish(self.topics.status, self._status("online"), qos=1, retain=True)
        self.state, self.last_error, self.connected_since = "connected", None, iso_now()
        log.info("uplink: connected to %s:%d as %s", host, port, client._client_id.decode())
        return client

    def _fail(self, state: str, error: str) -> None:
        if error != self.last_error:
            log.error("uplink: %s", error)
        self.state, self.last_error = state, error

    def _drop(self, client: mqtt.Client) -> None:
        self._detach()
        try:
            client.disconnect()
        except Exception:
            pass
        try:
            client.socket() and client.socket().close()  # type: ignore[union-attr]
        except Exception:
            pass

    # -------------------------------------------------------------- drain
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, drain, and on any loss reconnect with jittered back-off, until stopped."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.heartbeat = time.monotonic()
            self.state = "connecting"
            client = await self._connect()
            if client is None:
                delay = self._backoff.next_delay()
                if self.state != "auth_failed" and self.state != "tls_failed":
                    self.state = "backoff"
                await self._sleep_or_stop(stop, delay)
                continue
            self._client = client
            started = time.monotonic()
            try:
                await self._drain(client, stop)
            finally:
                await self._after_session(client, stop)
            if time.monotonic() - started > 30:
                self._backoff.reset()
            if not stop.is_set():
                await self._sleep_or_stop(stop, self._backoff.next_delay())

    async def _sleep_or_stop(self, stop: asyncio.Event, delay: float) -> None:
        end = time.monotonic() + delay
        while not stop.is_set() and time.monotonic() < end:
            self.heartbeat = time.monotonic()
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, max(0.0, end - time.monotonic())))
            except TimeoutError:
                pass

    async def _after_session(self, client: mqtt.Client, stop: asyncio.Event) -> None:
        await self._flush_acks(force=True)
        if stop.is_set() and not self._lost.is_set():
            info = client.publish(self.topics.status, self._status("offline", "shutdown"), qos=1, retain=True)
            end = time.monotonic() + 2.0
            while not info.is_published() and not self._lost.is_set() and time.monotonic() < end:
                await asyncio.sleep(0.02)
        self._drop(client)
        self._client = None
        self._inflight.clear()
        self._acks.clear()
        await self.buffer.release_all()
        if not stop.is_set():
            self._fail("backoff", self.last_error or "connection to broker lost")
        else:
            self.state = "stopped"

    async def _flush_acks(self, force: bool = False) -> None:
        seqs = []
        while self._acks:
            seq = self._inflight.pop(self._acks.popleft(), None)
            if seq is not None:
                seqs.append(seq)
        if seqs:
            self._pending_acks.extend(seqs)
        if self._pending_acks and (force or len(self._pending_acks) >= 500
                                   or time.monotonic() - self._last_ack_flush > 0.05):
            batch, self._pending_acks = self._pending_acks, []
            self._last_ack_flush = time.monotonic()
            await self.buffer.ack(batch)
            self.acked += len(batch)

    async def _drain(self, client: mqtt.Client, stop: asyncio.Event) -> None:
        qos, window = self.cfg.qos, self.cfg.inflight
        pending: collections.deque[StoredRecord] = collections.deque()
        self._pending_acks: list[int] = []
        self._last_ack_flush = time.monotonic()
        rate = self.cfg.max_rate
        tokens, last_refill = (rate or 0.0), time.monotonic()
        grace_end: float | None = None
        while not self._lost.is_set():
            self.heartbeat = time.monotonic()
            self._wake.clear()
            await self._flush_acks()
            if stop.is_set():
                # Shutting down: keep draining briefly (the final events), then leave; whatever
                # is left stays committed in the buffer for the next start.
                grace_end = grace_end or time.monotonic() + SHUTDOWN_GRACE_S
                if time.monotonic() > grace_end:
                    break
            room = window - len(self._inflight)
            if room > 0 and not pending:
                pending.extend(await self.buffer.lease(min(max(room, 100), 2000)))
                if stop.is_set() and not pending and not self._inflight:
                    break
            if rate:
                now = time.monotonic()
                tokens = min(rate, tokens + (now - last_refill) * rate)
                last_refill = now
                room = min(room, int(tokens))
            sent = 0
            while pending and sent < room:
                rec = pending.popleft()
                info = client.publish(self.topics.for_record(rec.kind, rec.source), json_body(rec), qos=qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self._lost.set()
                    break
                self._inflight[info.mid] = rec.seq
                sent += 1
            if sent:
                self._want_write(client)  # a full socket buffer leaves bytes for the writer
            if rate:
                tokens -= sent
            self.sent += sent
            if sent == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=0.05 if self._inflight else 0.5)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)
