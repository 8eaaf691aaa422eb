"""OPC UA client driver (asyncua): one session per device, points by node id.

``mode: subscribe`` (default): one subscription per session with a data-change monitored item
per point; notifications go straight to the poller (``set_push``), which reports them at once
through the same quality and report-on-change path as a read. The poller's ``read`` each
interval costs no request: it checks the session and hands back the latest values, so ageing,
``max_silent`` and back-off behave as for Modbus. ``mode: poll``: one Read of all points of a
group per interval.

A lost session (server restart, cable) is noticed by asyncua's watchdog or at the next read;
the driver then drops the client and the poller's next cycle reconnects and re-subscribes,
paced by ``backoff_after``/``backoff_interval`` while the server stays away. asyncua's own
auto-reconnect is off: one owner of the connection, and its failures are ours to word.

This module is imported only when an ``opcua`` device is configured (``drivers/registry.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.uaerrors import UaError

from config.drivers import OpcUaDevice, PointSettings
from drivers.errors import Unreachable
from drivers.opcua_session import Target, close_quietly, open_client
from drivers.opcua_values import status_reason, to_value
from drivers.planner import Barrier, Block
from drivers.protocol import BadValue, Push, Reading, Values

#: nodes per Read or CreateMonitoredItems request (servers limit both; 500 is below every common limit)
MAX_NODES_PER_READ = 500


class OpcUaDriver:
    """One OPC UA server (PLC, SCADA); implements ``drivers.protocol.PushingDriver``."""

    def __init__(self, dev: OpcUaDevice) -> None:
        self.dev = dev
        self.target = Target(dev.endpoint, dev.security, dev.login, dev.timeout)
        self._client: Client | None = None
        self._lost: str | None = None
        self._lock = asyncio.Lock()
        self._push: Push | None = None
        #: node → the points reading it (a node may feed two points, e.g. scaled twice)
        self._by_node: dict[ua.NodeId, list[PointSettings]] = {}
        for p in dev.points:
            assert p.node is not None  # the settings model requires it
            self._by_node.setdefault(ua.NodeId.from_string(p.node), []).append(p)
        #: subscribe mode: the latest value of every point, as the server last said
        self._latest: dict[str, Reading | BadValue] = {}
        #: changes not yet handed to the poller: one hand-over per publish response, not per item
        self._pending: Values = {}
        self._consumer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ contract
    def set_push(self, push: Push) -> None:
        self._push = push

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        """All points of a group in one Read (chunked): OPC UA reads many nodes per request."""
        pts = list(points)
        return [
            Block(None, i, len(pts[i : i + MAX_NODES_PER_READ]), pts[i : i + MAX_NODES_PER_READ])
            for i in range(0, len(pts), MAX_NODES_PER_READ)
        ]

    async def connect(self) -> None:
        async with self._lock:
            if self._client is not None and self._lost is None and self._client.state.value == "connected":
                return
            await self._drop()
            client = await open_client(self.target, watchdog=min(self.dev.timeout, 5.0))
            client.connection_lost_callback = self._connection_lost
            self._client, self._lost = client, None
            if self.dev.mode == "subscribe":
                try:
                    await self._subscribe(client)
                except Exception as exc:
                    await self._drop()
                    raise Unreachable(f"could not subscribe ({_why(exc)})") from None

    async def read(self, block: Block) -> Values:
        await self.connect()
        if self.dev.mode == "subscribe":
            return {p.name: self._latest.get(p.name, BadValue(f"{p.node}: no value from the server yet")) for p in block.points}
        client = self._client
        assert client is not None
        try:
            values = await self._read(client, block.points)
        except Exception as exc:
            reason = f"connection lost ({_why(exc)})"
            self.on_lost(reason)
            raise Unreachable(reason) from None
        return dict(values)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    # ------------------------------------------------------------------ inside
    async def _read(self, client: Client, points: Sequence[PointSettings]) -> dict[str, Reading | BadValue]:
        params = ua.ReadParameters()
        params.TimestampsToReturn = ua.TimestampsToReturn.Source
        for p in points:
            rv = ua.ReadValueId()
            rv.NodeId = ua.NodeId.from_string(p.node or "")
            rv.AttributeId = ua.AttributeIds.Value
            params.NodesToRead.append(rv)
        results = await asyncio.wait_for(client.uaclient.read(params), self.dev.timeout + 0.5)
        return {p.name: to_value(p, dv) for p, dv in zip(points, results, strict=True)}

    async def _subscribe(self, client: Client) -> None:
        """Seed every point with one Read, then a data-change item per node; refused nodes are bad."""
        points = list(self.dev.points)
        self._latest = {}
        for i in range(0, len(points), MAX_NODES_PER_READ):
            self._latest.update(await self._read(client, points[i : i + MAX_NODES_PER_READ]))
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = self.dev.publishing_interval * 1000
        # a keep-alive about every 10 s when nothing changes; the server drops us after 30 silent ones
        params.RequestedMaxKeepAliveCount = max(1, round(10 / self.dev.publishing_interval))
        params.RequestedLifetimeCount = params.RequestedMaxKeepAliveCount * 30
        params.MaxNotificationsPerPublish = 10000
        params.PublishingEnabled = True
        params.Priority = 0
        # iterator mode: asyncua queues a publish response's items at once (its handler mode
        # starts a task per item: 100x the CPU at 1000 changing nodes, bench/opcua_bench.py)
        sub = await client.create_subscription(params, None, queue_maxsize=max(10_000, 4 * len(self._by_node)))
        nodes = list(self._by_node)
        # the server samples each node at the publishing interval: a PLC is not asked for more than is sent
        interval_ms = ua.Double(self.dev.publishing_interval * 1000)
        handles: list[int | ua.StatusCode] = []
        for i in range(0, len(nodes), MAX_NODES_PER_READ):  # servers bound monitored items per call too
            chunk = [client.get_node(n) for n in nodes[i : i + MAX_NODES_PER_READ]]
            handles += await sub.subscribe_data_change(chunk, sampling_interval=interval_ms)
        for node, handle in zip(nodes, handles, strict=True):
            if isinstance(handle, ua.StatusCode):
                for p in self._by_node[node]:
                    self._latest[p.name] = BadValue(status_reason(p.node or node.to_string(), handle))
        if self._push is not None:
            self._push(dict(self._latest), time.time())
        self._consumer = asyncio.create_task(self._consume(sub), name=f"opcua-{self.dev.id}")

    async def _consume(self, sub: Subscription) -> None:
        """Notifications, in order, to the cache; the poller gets them batched (``_flush``)."""
        try:
            async for event in sub:
                if isinstance(event, DataChangeEvent):
                    self.on_change(event.node.nodeid, event.data.monitored_item.Value)
                elif isinstance(event, StatusChangeEvent):
                    self.on_lost(f"subscription ended by the server ({event.notification.Status.name})")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a notification we cannot take: renew the session rather than go quiet
            self.on_lost(f"subscription failed ({_why(exc)})")

    def on_change(self, node: ua.NodeId, dv: ua.DataValue) -> None:
        """A data-change notification: to the cache, and to the poller once this batch is in."""
        for p in self._by_node.get(node, ()):
            if not self._pending:
                asyncio.get_running_loop().call_soon(self._flush)
            self._pending[p.name] = self._latest[p.name] = to_value(p, dv)

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        if pending and self._push is not None:
            self._push(pending, time.time())

    def on_lost(self, reason: str) -> None:
        """The session is gone: the next read reconnects (or reports the server unreachable)."""
        if self._lost is None:
            self._lost = reason

    async def _connection_lost(self, exc: Exception) -> None:
        self.on_lost(f"connection lost ({_why(exc)})")

    async def _drop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
        client, self._client = self._client, None
        if client is not None:
            await close_quietly(client, min(self.dev.timeout, 2.0))


def _why(exc: BaseException) -> str:
    """A library exception in a few words (its status name when it has one)."""
    code = getattr(exc, "code", None)
    if isinstance(exc, UaError) and isinstance(code, int):
        return ua.StatusCode(ua.UInt32(code)).name
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
