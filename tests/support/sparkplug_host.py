"""A Sparkplug B host application's view of one edge node, for tests.

Decodes with ``pysparkplug`` (its own protobuf module generated from the Sparkplug B schema),
never with the gateway's encoder (agent/uplink/sparkplug/schema.py), so a mistake in one is not
repeated in the other. It checks what a host relies on while it reads: seq continuity from the
NBIRTH on, every DDATA alias known from the device's DBIRTH, DDATA without names, births with
name, alias and datatype for every metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pysparkplug as spb
from pysparkplug import _protobuf as spb_pb

from tests.support.broker import Message


@dataclass
class Reading:
    device: str
    name: str
    value: Any
    quality: int | None  # the Quality property (None: absent, which means good)
    ts_ms: int | None


@dataclass
class NodeView:
    """Everything a host learned from one node's messages, in arrival order."""

    group: str
    node: str
    events: list[tuple[str, str | None, int | None]] = field(default_factory=list)  # (type, device, seq)
    nbirth_bdseqs: list[int] = field(default_factory=list)
    ndeath_bdseqs: list[int] = field(default_factory=list)
    births: dict[str, dict[int, tuple[str, spb.DataType]]] = field(default_factory=dict)  # device -> alias -> (name, type)
    birth_counts: dict[str, int] = field(default_factory=dict)
    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _seq: int | None = None
    _dbirth: dict[str, spb.DBirth] = field(default_factory=dict)

    def _check_seq(self, kind: str, seq: int) -> None:
        if self._seq is None:
            self.problems.append(f"{kind} seq {seq} before any NBIRTH")
        elif seq != (self._seq + 1) % 256:
            self.problems.append(f"{kind} seq {seq} after {self._seq}")
        self._seq = seq

    def feed(self, msg: Message) -> None:
        parts = msg.topic.split("/")
        if parts[:2] != ["spBv1.0", self.group] or parts[3] != self.node:
            return
        kind, device = parts[2], (parts[4] if len(parts) > 4 else None)
        if kind in ("NCMD", "DCMD"):  # a host's own commands, not the node's messages
            return
        if msg.retain:
            self.problems.append(f"{kind} retained")
        if kind == "NBIRTH":
            nb = spb.NBirth.decode(msg.payload)
            if nb.seq != 0:
                self.problems.append(f"NBIRTH seq {nb.seq}")
            self._seq = nb.seq
            names = {m.name: m for m in nb.metrics}
            bd = names["bdSeq"]
            assert bd.datatype is spb.DataType.INT64, bd
            self.nbirth_bdseqs.append(int(bd.value))
            if names["Node Control/Rebirth"].value is not False:
                self.problems.append("NBIRTH Rebirth metric not false")
            self._dbirth.clear()  # a new NBIRTH voids the device births
            self.events.append((kind, None, nb.seq))
        elif kind == "NDEATH":
            nd = spb.NDeath.decode(msg.payload)
            self.ndeath_bdseqs.append(int(nd.bd_seq_metric.value))
            self._seq = None
            self.events.append((kind, None, None))
        elif kind == "DBIRTH":
            db = spb.DBirth.decode(msg.payload)
            self._check_seq(kind, db.seq)
            aliases: dict[int, tuple[str, spb.DataType]] = {}
            for m in db.metrics:
                if m.name is None or m.alias is None or m.datatype is spb.DataType.UNKNOWN:
                    self.problems.append(f"DBIRTH {device} metric without name/alias/datatype: {m}")
                    continue
                if m.alias in aliases:
                    self.problems.append(f"DBIRTH {device} alias {m.alias} twice")
                aliases[m.alias] = (m.name, m.datatype)
            assert device is not None
            self.births[device] = aliases
            self.birth_counts[device] = self.birth_counts.get(device, 0) + 1
            self._dbirth[device] = db
            self.events.append((kind, device, db.seq))
        elif kind == "DDATA":
            assert device is not None
            raw = spb_pb.Payload.FromString(msg.payload)
            birth = self._dbirth.get(device)
            if birth is None:
                self.problems.append(f"DDATA for {device} without a DBIRTH in this session")
                return
            if any(m.name for m in raw.metrics):
                self.problems.append(f"DDATA for {device} carries metric names")
            dd = spb.DData.decode(msg.payload, birth=birth)  # resolves aliases to the birth's names
            self._check_seq(kind, dd.seq)
            for m, pm in zip(dd.metrics, raw.metrics, strict=True):
                if not m.is_null and pm.WhichOneof("value") != m.datatype.field:
                    self.problems.append(f"DDATA {device}/{m.name}: {m.datatype.name} in {pm.WhichOneof('value')}")
                quality = None
                props = dict(zip(pm.properties.keys, pm.properties.values, strict=True))
                if "Quality" in props:
                    q = props["Quality"].int_value
                    quality = q - (1 << 32) if q >= 1 << 31 else q
                self.readings.append(Reading(device, str(m.name), None if m.is_null else m.value, quality, m.timestamp))
            self.events.append((kind, device, dd.seq))
        elif kind == "DDEATH":
            dd_ = spb.DDeath.decode(msg.payload)
            self._check_seq(kind, dd_.seq)
            self._dbirth.pop(str(device), None)
            self.events.append((kind, device, dd_.seq))
        else:
            self.problems.append(f"unexpected message type {kind}")

    def values(self, device: str, name: str) -> list[Any]:
        return [r.value for r in self.readings if r.device == device and r.name == name]


def view(messages: list[Message], group: str, node: str) -> NodeView:
    v = NodeView(group, node)
    for msg in messages:
        v.feed(msg)
    return v


def ncmd_rebirth(value: bool = True) -> bytes:
    """An NCMD as a host sends it, encoded by pysparkplug (not by the gateway's code)."""
    metric = spb.Metric(
        timestamp=spb.get_current_timestamp(), name="Node Control/Rebirth", datatype=spb.DataType.BOOLEAN, value=value
    )
    return spb.NCmd(timestamp=spb.get_current_timestamp(), metrics=(metric,)).encode(include_dtypes=True)


def ncmd_metric(name: str, value: float) -> bytes:
    metric = spb.Metric(timestamp=spb.get_current_timestamp(), name=name, datatype=spb.DataType.DOUBLE, value=value)
    return spb.NCmd(timestamp=spb.get_current_timestamp(), metrics=(metric,)).encode(include_dtypes=True)
