"""The drain: leased records through one session, bounded by a window and an optional rate,
acknowledged to the buffer in batches when the broker acknowledges them (at least once).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from agent.uplink.formatters import Formatter, OutboundMessage
from agent.uplink.session import Session
from config.spine import UplinkSettings

if TYPE_CHECKING:  # the buffer boundary (SPEC: buffer/boundary.py)
    from buffer.boundary import Buffer, StoredRecord

#: How long a stopping agent keeps draining before it leaves the rest in the buffer.
SHUTDOWN_GRACE_S = 2.0
#: Acks go to the buffer in batches: at this many, or after ACK_FLUSH_S, whichever is first.
ACK_BATCH = 500
ACK_FLUSH_S = 0.05
#: Lease sizes: at least this many (fewer round trips), at most that many (bounded memory).
LEASE_MIN, LEASE_MAX = 100, 2000


class Drain:
    """Window, rate limit and ack batching for one session at a time."""

    def __init__(
        self, cfg: UplinkSettings, buffer: Buffer, formatter: Formatter, wake: asyncio.Event, beat: Callable[[], None]
    ) -> None:
        self.cfg = cfg
        self.buffer = buffer
        self.formatter = formatter
        self.wake = wake
        self.beat = beat
        self.sent = 0
        self.acked = 0
        self.inflight: dict[int, int] = {}  # message id -> seq
        self._acks: collections.deque[int] = collections.deque()  # message ids acknowledged by the broker
        self._pending_acks: list[int] = []  # seqs not yet acked to the buffer
        #: records sent as several messages (a formatter's ``format_all``): seq -> parts not yet acked
        self._parts: dict[int, int] = {}
        self._last_ack_flush = time.monotonic()

    def on_ack(self, mid: int) -> None:
        """PUBACK (called on the loop by the bridge)."""
        self._acks.append(mid)
        self.wake.set()

    async def flush_acks(self, force: bool = False) -> None:
        """Ack what the broker acknowledged; in batches, since each ack is a transaction."""
        inflight, acks = self.inflight, self._acks
        while acks:
            seq = inflight.pop(acks.popleft(), None)
            if seq is not None:
                left = self._parts.pop(seq, 1) - 1
                if left:  # the record is acked once every one of its messages is
                    self._parts[seq] = left
                    continue
                self._pending_acks.append(seq)
        if self._pending_acks and (
            force or len(self._pending_acks) >= ACK_BATCH or time.monotonic() - self._last_ack_flush > ACK_FLUSH_S
        ):
            batch, self._pending_acks = self._pending_acks, []
            self._last_ack_flush = time.monotonic()
            await self.buffer.ack(batch)
            self.acked += len(batch)

    async def run(self, session: Session, stop: asyncio.Event) -> None:
        """Publish until the session is lost, or until ``stop`` plus a short grace for the last events."""
        session.bridge.on_ack = self.on_ack
        session.bridge.disconnected.add_done_callback(lambda _f: self.wake.set())
        qos, window, rate = self.cfg.qos, self.cfg.inflight, self.cfg.max_rate
        fmt, publish, inflight = self.formatter.format, session.publish, self.inflight
        #: a formatter that may turn one record into several messages (platform mappings)
        fmt_all: Callable[[StoredRecord], Sequence[OutboundMessage]] | None = getattr(self.formatter, "format_all", None)
        pending: collections.deque[StoredRecord] = collections.deque()
        self._pending_acks = []
        self._last_ack_flush = time.monotonic()
        tokens, last_refill = (rate or 0.0), time.monotonic()
        grace_end: float | None = None
        while not session.lost:
            self.beat()
            self.wake.clear()
            await self.flush_acks()
            if stop.is_set():
                # Shutting down: keep draining briefly (the final events), then leave; whatever
                # is left stays committed in the buffer for the next start.
                grace_end = grace_end or time.monotonic() + SHUTDOWN_GRACE_S
                if time.monotonic() > grace_end:
                    break
            room = window - len(inflight)
            if room > 0 and not pending:
                pending.extend(await self.buffer.lease(min(max(room, LEASE_MIN), LEASE_MAX)))
                if stop.is_set() and not pending and not inflight:
                    break
            if rate:
                now = time.monotonic()
                tokens = min(rate, tokens + (now - last_refill) * rate)
                last_refill = now
                room = min(room, int(tokens))
            sent = 0
            while pending and sent < room:
                rec = pending.popleft()
                msgs = fmt_all(rec) if fmt_all is not None else (fmt(rec),)
                if len(msgs) > 1:
                    self._parts[rec.seq] = len(msgs)
                for msg in msgs:
                    info = publish(msg.topic, msg.payload, qos)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        session.bridge.mark_lost(f"publish failed ({mqtt.error_string(info.rc)})")
                        break
                    inflight[info.mid] = rec.seq
                else:
                    sent += 1
                    continue
                break
            if rate:
                tokens -= sent
            self.sent += sent
            if sent == 0:
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=0.05 if inflight else 0.5)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)

    async def reset(self) -> None:
        """After a session: ack what was acknowledged, forget the rest, let the buffer lease it again."""
        await self.flush_acks(force=True)
        self.inflight.clear()
        self._acks.clear()
        self._parts.clear()
        await self.buffer.release_all()
