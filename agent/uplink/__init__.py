"""MQTT uplink: leases records from the buffer, publishes at QoS 1, acks on PUBACK.

Parts, one job each: ``bridge`` (paho on the asyncio loop), ``session`` (one connection attempt:
TLS, credentials, will, CONNACK -> typed errors), ``drain`` (window, rate, ack batching),
``formatters`` (record -> topic + body), ``status`` (retained status with times), ``commands``
(the inbound command topic -> ``command`` records, strictly validated and rate-limited), ``external``
(the positioning system's headcount topics -> telemetry records, just as strict). ``Uplink``
keeps a session alive with jittered back-off and says what state it is in.

One paho client per connection attempt: when a session dies, the client and everything it had
in flight are dropped and the unacknowledged records are leased again from the buffer, so the
buffer is the only source of truth (at least once, no hidden second queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent.backoff import Backoff
from agent.uplink.commands import CommandInbox
from agent.uplink.drain import SHUTDOWN_GRACE_S, Drain
from agent.uplink.errors import UplinkError
from agent.uplink.external import ExternalCountInbox
from agent.uplink.formatters import Formatter, JsonFormatter, OutboundMessage, Topics
from agent.uplink.hooks import SessionHooks
from agent.uplink.mapping import MappingFormatter, build_formatter
from agent.uplink.session import Session, Will, connect, read_password
from agent.uplink.status import PreviousSession, StatusDocs, iso, iso_now
from config.schema import Settings

if TYPE_CHECKING:  # the buffer boundary (SPEC: buffer/boundary.py)
    from buffer.boundary import Buffer, Committed

__all__ = ["SHUTDOWN_GRACE_S", "Formatter", "JsonFormatter", "OutboundMessage", "Topics", "Uplink", "iso_now"]

log = logging.getLogger("headframe.uplink")

#: A session that lasted this long resets the back-off (the broker is healthy again).
STABLE_SESSION_S = 30.0


class Uplink:
    """Keeps one MQTT session alive and drains the buffer through it."""

    def __init__(
        self, settings: Settings, buffer: Buffer, formatter: Formatter | None = None, previous: PreviousSession | None = None
    ) -> None:
        self.settings = settings
        self.cfg = settings.uplink
        self.buffer = buffer
        self.topics = Topics(settings)
        if formatter is None and self.cfg.format == "sparkplug":
            from agent.uplink.sparkplug import SparkplugFormatter  # protobuf only when configured

            formatter = SparkplugFormatter(settings, self.topics)
        self.formatter: Formatter = formatter or build_formatter(settings, JsonFormatter(self.topics))
        #: per-session calls of a stateful wire format (Sparkplug B: NDEATH will, NBIRTH, NCMD)
        self.hooks = self.formatter if isinstance(self.formatter, SessionHooks) else None
        self.client_id = self.cfg.client_id or f"headframe-{settings.gateway.site}-{settings.gateway.id}"
        self.state = "connecting"
        self.last_error: str | None = None
        self.connected_since: str | None = None
        self.heartbeat = time.monotonic()
        self.status_docs = StatusDocs(settings)
        #: how the last session ended; a new uplink (reload) may inherit an outage still going on
        self.previous = previous or PreviousSession(lost_at=None, reason="uplink started")
        self._started_wall = time.time()
        #: called on the loop after each session came up, with how the one before ended and
        #: the time it came up (the hook for a "link_down" gap record, issue 10)
        self.on_online: Callable[[PreviousSession, float], None] | None = None
        #: called on the loop when a session is lost (not at a clean stop), with the time of loss
        self.on_offline: Callable[[float], None] | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backoff = Backoff(self.cfg.reconnect_min, self.cfg.reconnect_max)
        self._password = read_password(self.cfg)
        self._drain = Drain(self.cfg, buffer, self.formatter, self._wake, self._beat)
        self.commands = CommandInbox(self.topics.command, buffer)
        #: the positioning system's headcount topics (rules.headcount.external[].mqtt)
        self.external = ExternalCountInbox(settings.rules.headcount.external, buffer)

    # ------------------------------------------------------------- surface
    @property
    def sent(self) -> int:
        return self._drain.sent

    @property
    def acked(self) -> int:
        return self._drain.acked

    def wake(self) -> None:
        """New records were committed: the drain should look again (safe from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_error": self.last_error,
            "connected_since": self.connected_since,
            "inflight": len(self._drain.inflight),
            "sent": self.sent,
            "acked": self.acked,
            "commands": self.commands.counters(),
            **({"external_counts": self.external.counters()} if self.external.topics else {}),
            **({"mapping": self.formatter.counters()} if isinstance(self.formatter, MappingFormatter) else {}),
            **({"sparkplug": self.hooks.counters()} if self.hooks is not None else {}),
        }

    def _beat(self) -> None:
        self.heartbeat = time.monotonic()

    def _on_commit(self, committed: Sequence[Committed]) -> None:
        self._wake.set()  # the buffer calls subscribers on the loop

    # ----------------------------------------------------------------- run
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, drain, and on any loss reconnect with jittered back-off, until stopped."""
        self._loop = asyncio.get_running_loop()
        unsubscribe = self.buffer.subscribe(self._on_commit)
        attempts = 0
        try:
            while not stop.is_set():
                self._beat()
                self.state = "connecting"
                started_wall = time.time()
                will = self.hooks.will() if self.hooks is not None else None
                try:
                    session = await connect(
                        self.cfg,
                        self.client_id,
                        will or Will(self.topics.status, self.status_docs.will(started_wall)),
                        self._password,
                    )
                except UplinkError as exc:
                    attempts += 1
                    self._fail(exc.state, str(exc))
                    if self.previous.lost_at is None:  # never connected yet: the link is down since we started
                        self.previous = PreviousSession(
                            lost_at=self._started_wall, reason="no connection since the uplink started"
                        )
                    await self._sleep_or_stop(stop, self._backoff.next_delay())
                    continue
                self._online(session, started_wall, attempts)
                attempts = 0
                started = time.monotonic()
                try:
                    if self.hooks is None or await self.hooks.ready(session, stop, self._beat):
                        await self._drain.run(session, stop)
                finally:
                    await self._end(session, stop, started_wall)
                if time.monotonic() - started > STABLE_SESSION_S:
                    self._backoff.reset()
                if not stop.is_set():
                    await self._sleep_or_stop(stop, self._backoff.next_delay())
        finally:
            self.commands.flush()  # a flood still being counted is recorded, not forgotten
            self.external.flush()
            unsubscribe()

    def _online(self, session: Session, started_wall: float, attempts: int) -> None:
        now = time.time()
        prev = PreviousSession(self.previous.lost_at, self.previous.reason, attempts, self.last_error)
        session.publish(self.topics.status, self.status_docs.online(started_wall, now, prev), qos=1, retain=True)
        session.subscribe(self.topics.command, self.commands.on_message)
        for topic in self.external.topics:
            session.subscribe(topic, self.external.on_message)
        if self.hooks is not None:
            self.hooks.begin(session)
        self.state, self.last_error, self.connected_since = "connected", None, iso(now)
        down = f" after {now - prev.lost_at:.1f}s down" if prev.lost_at is not None else ""
        log.info("uplink: connected to %s as %s%s", session.where, session.client_id, down)
        if self.on_online is not None:
            try:
                self.on_online(prev, now)
            except Exception:  # a listener's bug must not take the link down
                log.exception("uplink: on_online listener failed")

    async def _end(self, session: Session, stop: asyncio.Event, started_wall: float) -> None:
        await self._drain.flush_acks(force=True)
        reason = session.loss_reason or "the drain ended with an error"
        if stop.is_set() and not session.lost:
            if self.hooks is not None:
                self.hooks.end(session)
            await session.end(self.topics.status, self.status_docs.shutdown(started_wall, time.time()), SHUTDOWN_GRACE_S)
        else:
            lost_at = time.time()
            self.previous = PreviousSession(lost_at=lost_at, reason=f"connection lost: {reason}")
            session.drop()
            if self.on_offline is not None:
                try:
                    self.on_offline(lost_at)
                except Exception:  # a listener's bug must not keep the link down
                    log.exception("uplink: on_offline listener failed")
        await self._drain.reset()
        if stop.is_set():
            self.state = "stopped"
        else:
            self._fail("backoff", f"connection to broker {session.where} lost: {reason}")

    def _fail(self, state: str, error: str) -> None:
        if error != self.last_error:
            log.error("uplink: %s", error)
        self.state, self.last_error = state, error

    async def _sleep_or_stop(self, stop: asyncio.Event, delay: float) -> None:
        end = time.monotonic() + delay
        while not stop.is_set() and time.monotonic() < end:
            self._beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, max(0.0, end - time.monotonic())))
