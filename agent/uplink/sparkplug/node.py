"""Sparkplug B edge node: leased records -> NBIRTH/DBIRTH/DDATA/DDEATH, NDEATH as the will.

Still fed only from the durable buffer: ``format(rec)`` returns the one message whose PUBACK
acks the record (a DDATA, or the record's plain JSON message); births and deaths are session
state, published on the same connection just before it, never acked to the buffer. A lost
session re-leases the unacked records, and the next session starts with a fresh NBIRTH and
DBIRTHs, so a host never sees data it has no birth for.

What goes where (docs/mqtt.md, "Sparkplug B"): telemetry with ``values`` of a device that is
not dead -> DDATA of device ``source``; every other record (events, alarms, health, telemetry of
a dead device or of an unexpected shape) -> its plain JSON topic, acked the same way. A
``device_state`` event to ``offline``/``backoff`` -> DDEATH, applied in seq order among the
telemetry (events are leased before telemetry, so they wait in ``_pending`` until the
telemetry cursor passes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from google.protobuf.message import DecodeError

from agent.uplink.formatters import JsonFormatter, OutboundMessage, Topics
from agent.uplink.session import Session, Will
from agent.uplink.sparkplug.bdseq import BdSeq
from agent.uplink.sparkplug.host import PrimaryHost
from agent.uplink.sparkplug.metrics import DeviceMetrics, MetricDef, datatype_of, fill, set_value
from agent.uplink.sparkplug.schema import DataType, Payload
from agent.version import VERSION
from buffer.record import Kind
from config.schema import Settings
from config.sparkplug import SparkplugSettings

if TYPE_CHECKING:  # the buffer boundary (SPEC: buffer/boundary.py); only its shape is used here
    from buffer.boundary import StoredRecord

log = logging.getLogger("headframe.uplink")

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
#: device states (drivers/device.py) in which the device is dead for Sparkplug
DEAD_STATES = frozenset({"offline", "backoff"})
#: a complaint about inbound NCMDs is logged at most this often (the rest are counted)
COMPLAINT_EVERY_S = 5.0


class SparkplugFormatter:
    """The Formatter and SessionHooks of one edge node (one per ``Uplink``)."""

    def __init__(self, settings: Settings, topics: Topics, clock: Callable[[], float] = time.time) -> None:
        sp = settings.uplink.sparkplug or SparkplugSettings()
        self.group = sp.group_id or settings.gateway.site
        self.node = sp.edge_node_id or settings.gateway.id
        self.min_rebirth_interval = sp.min_rebirth_interval
        self.qos = settings.uplink.qos
        self.clock = clock
        self.json = JsonFormatter(topics)
        self.bdseq = BdSeq(settings.buffer.path.with_name("sparkplug.bdseq"))
        node_topic = f"{NAMESPACE}/{self.group}/{{}}/{self.node}"
        self.t_nbirth, self.t_ndeath, self.t_ncmd = (node_topic.format(t) for t in ("NBIRTH", "NDEATH", "NCMD"))
        self.devices: dict[str, DeviceMetrics] = {}  # learned from the records; kept across sessions
        self.dead: set[str] = set()  # devices whose last state event (in seq order) was offline
        self.born: set[str] = set()  # devices with a DBIRTH in this session
        self._pending: dict[int, tuple[str, bool]] = {}  # seq of a device_state event -> (device, dead)
        self._state_seq: dict[str, int] = {}  # device -> seq of its last applied state event
        self._next_alias = 1
        self._seq = 0
        self._bd = 0
        self._session: Session | None = None
        self._last_rebirth = float("-inf")
        self._last_complaint: dict[str, float] = {}  # per kind of complaint
        self.host = PrimaryHost(sp.primary_host_id) if sp.primary_host_id else None
        if self.host is not None:
            self.host.on_offline = self._host_offline
        self._counts = {"births": 0, "rebirths": 0, "ddeath": 0, "ncmd_ignored": 0, "to_json": 0}

    # --------------------------------------------------------- session hooks
    def will(self) -> Will:
        self._bd = self.bdseq.next()
        return Will(self.t_ndeath, self._ndeath(), qos=1, retain=False)

    def begin(self, session: Session) -> None:
        self._session = session
        self.born.clear()
        session.subscribe(self.t_ncmd, self._on_ncmd)
        if self.host is None:
            self._birth_all()
        else:
            self.host.watch(session)  # births when the host says it is online (ready)

    async def ready(self, session: Session, stop: asyncio.Event, beat: Callable[[], None]) -> bool:
        """Without a primary host at once; with one, after its STATE says online (then the births)."""
        host = self.host
        if host is None:
            return not session.lost
        if not host.online:
            log.info(
                "sparkplug: waiting for primary host %s to be online (%s); readings stay in the buffer", host.host_id, host.topic
            )
        while not (host.online or session.lost or stop.is_set()):
            beat()
            host.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(host.changed.wait(), timeout=1.0)
        if not host.online or session.lost or stop.is_set():
            return False
        self._birth_all()
        return True

    def _host_offline(self) -> None:
        """Sparkplug 3.0: a node whose primary host went offline disconnects (its will is the NDEATH)."""
        if self._session is not None and not self._session.lost:
            self._session.bridge.mark_lost(f"primary host {self.host.host_id if self.host else '?'} went offline (STATE)")

    def end(self, session: Session) -> None:
        """A clean stop: the broker drops the will on DISCONNECT, so send the NDEATH ourselves."""
        if not session.lost:
            session.publish(self.t_ndeath, self._ndeath(), qos=1)
        self._session = None

    def counters(self) -> dict[str, Any]:
        host = {"primary_host": {"id": self.host.host_id, "online": self.host.online}} if self.host else {}
        return {"group_id": self.group, "edge_node_id": self.node, "bdseq": self._bd, **host, **self._counts}

    # ------------------------------------------------------------- formatter
    def format(self, rec: StoredRecord) -> OutboundMessage:
        if rec.kind is Kind.TELEMETRY:
            if self._pending:
                self._apply_states(rec.seq)
            try:
                msg = self._telemetry(rec)
            except (TypeError, ValueError, OverflowError) as exc:  # a value protobuf cannot take: JSON carries it
                log.warning("sparkplug: record %d of %s sent as JSON: %s", rec.seq, rec.source, exc)
                msg = None
            if msg is not None:
                return msg
        elif rec.kind is Kind.EVENT:
            self._note_state(rec)
        self._counts["to_json"] += 1
        return self.json.format(rec)

    def _telemetry(self, rec: StoredRecord) -> OutboundMessage | None:
        """The DDATA for a reading (after a DBIRTH if needed), or None: it goes as JSON."""
        if rec.source in self.dead or self._session is None:
            return None
        values = orjson.loads(rec.doc).get("payload", {}).get("values")
        if not isinstance(values, dict) or not values:
            return None
        readings: list[tuple[str, Any, str, Any, str | None]] = []
        for name, entry in values.items():
            if not isinstance(entry, dict):
                return None
            v, q = entry.get("v"), entry.get("q", "good")
            if v is not None and datatype_of(v) is None:
                return None  # a structure, not a scalar: the JSON topic carries it whole
            readings.append((name, v, q if isinstance(q, str) else "bad", entry.get("reason"), entry.get("unit")))
        dev = self.devices.setdefault(rec.source, DeviceMetrics())
        rebirth = rec.source not in self.born
        ts_ms = int(rec.ts * 1000)
        touched: list[MetricDef] = []
        for name, v, q, reason, unit in readings:
            dt = datatype_of(v)
            m = dev.metrics.get(name)
            if m is None:
                m = dev.metrics[name] = MetricDef(name, self._next_alias, dt or DataType.DOUBLE)
                self._next_alias += 1
                rebirth = True
            elif dt is not None and dt is not m.datatype:
                m.datatype, rebirth = dt, True  # the host must learn the new type from a birth
            m.value, m.quality, m.reason, m.ts_ms = v, q, reason if isinstance(reason, str) else None, ts_ms
            if isinstance(unit, str):
                m.unit = unit
            touched.append(m)
        if rebirth:
            self._dbirth(rec.source)
        payload = Payload(timestamp=int(self.clock() * 1000), seq=self._next_seq())
        for m in touched:
            fill(payload.metrics.add(), m, birth=False)
        return OutboundMessage(self._device_topic("DDATA", rec.source), payload.SerializeToString())

    # ------------------------------------------------------- device states
    def _note_state(self, rec: StoredRecord) -> None:
        if b'"device_state"' not in rec.doc:
            return
        payload = orjson.loads(rec.doc).get("payload", {})
        if payload.get("event") == "device_state":
            self._pending[rec.seq] = (rec.source, payload.get("state") in DEAD_STATES)

    def _apply_states(self, seq: int) -> None:
        """Apply the state events committed before telemetry ``seq`` (all earlier telemetry is sent)."""
        for s in sorted(s for s in self._pending if s < seq):
            device, dead = self._pending.pop(s)
            if s <= self._state_seq.get(device, 0):
                continue  # leased again after a lost session: a newer state already applies
            self._state_seq[device] = s
            if not dead:
                self.dead.discard(device)
                continue
            self.dead.add(device)
            if device in self.born:
                self.born.discard(device)
                self._publish(self._device_topic("DDEATH", device), Payload(timestamp=self._now_ms(), seq=self._next_seq()))
                self._counts["ddeath"] += 1

    # ---------------------------------------------------------------- births
    def _birth_all(self) -> None:
        self._seq = 0
        payload = Payload(timestamp=self._now_ms(), seq=self._next_seq())
        self._node_metric(payload, "bdSeq", DataType.INT64, self._bd)
        self._node_metric(payload, REBIRTH, DataType.BOOLEAN, False)
        self._node_metric(payload, "Properties/Software", DataType.STRING, f"headframe {VERSION}")
        self._publish(self.t_nbirth, payload)
        log.info("sparkplug: NBIRTH on %s (bdSeq %d)", self.t_nbirth, self._bd)
        for device, dev in self.devices.items():
            if device not in self.dead and dev.metrics:
                self._dbirth(device)
        self._counts["births"] += 1

    def _dbirth(self, device: str) -> None:
        payload = Payload(timestamp=self._now_ms(), seq=self._next_seq())
        for m in self.devices[device].metrics.values():
            fill(payload.metrics.add(), m, birth=True)
        self._publish(self._device_topic("DBIRTH", device), payload)
        self.born.add(device)

    def _ndeath(self) -> bytes:
        payload = Payload(timestamp=self._now_ms())
        self._node_metric(payload, "bdSeq", DataType.INT64, self._bd)
        return bytes(payload.SerializeToString())

    @staticmethod
    def _node_metric(payload: Any, name: str, datatype: DataType, value: Any) -> None:
        metric = payload.metrics.add()
        metric.name, metric.datatype, metric.timestamp = name, int(datatype), payload.timestamp
        set_value(metric, datatype, value)

    # --------------------------------------------------------------- NCMD
    def _on_ncmd(self, topic: str, raw: bytes, retain: bool) -> None:
        """A host's node command: only ``Node Control/Rebirth = true`` is acted on."""
        if retain:
            return self._complain("retained", "a retained NCMD (a stale command left on the broker); clear it on the broker")
        try:
            cmd = Payload.FromString(raw)
        except DecodeError:
            return self._complain("payload", f"an NCMD that is not a Sparkplug B payload ({len(raw)} bytes)")
        rebirth = False
        for metric in cmd.metrics:
            name = metric.name
            if name == REBIRTH and metric.WhichOneof("value") == "boolean_value":
                rebirth = rebirth or bool(metric.boolean_value)
            else:
                shown = repr(name[:64]) if name else f"alias {metric.alias}"
                self._complain("metric", f"NCMD metric {shown}: this edge node accepts only {REBIRTH!r} = true")
        if rebirth:
            self.rebirth()

    def rebirth(self) -> None:
        """NBIRTH and every DBIRTH again, on the current session (a host asked)."""
        now = time.monotonic()
        if self._session is None or self._session.lost:
            return
        if self.host is not None and not self.host.online:
            return self._complain("host", f"a rebirth request while primary host {self.host.host_id} is offline")
        if now - self._last_rebirth < self.min_rebirth_interval:
            return self._complain("rate", f"a rebirth request within {self.min_rebirth_interval:g}s of the last one")
        self._last_rebirth = now
        self.born.clear()
        self._birth_all()
        self._counts["rebirths"] += 1
        log.info("sparkplug: rebirth on request (NCMD %s)", REBIRTH)

    def _complain(self, kind: str, what: str) -> None:
        """Log why an NCMD was ignored, at most once per COMPLAINT_EVERY_S for each kind of fault."""
        self._counts["ncmd_ignored"] += 1
        now = time.monotonic()
        if now - self._last_complaint.get(kind, float("-inf")) >= COMPLAINT_EVERY_S:
            self._last_complaint[kind] = now
            log.warning("sparkplug: ignored %s on %s (%d ignored so far)", what, self.t_ncmd, self._counts["ncmd_ignored"])

    # -------------------------------------------------------------- helpers
    def _publish(self, topic: str, payload: Any) -> None:
        if self._session is not None:
            self._session.publish(topic, payload.SerializeToString(), qos=self.qos)

    def _device_topic(self, kind: str, device: str) -> str:
        return f"{NAMESPACE}/{self.group}/{kind}/{self.node}/{device}"

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % 256
        return seq

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)
