"""Metric definitions per device and their encoding into Sparkplug B payload metrics.

A Headframe reading ``{"v": 12.5, "unit": "kW", "q": "good"}`` becomes one metric per point:
its name is the point name, its alias is unique across the edge node and fixed for the life of
the formatter (it survives reconnects, so a host keeps its tags), its data type follows the
value (numbers ``Double``, ``true``/``false`` ``Boolean``, text ``String``). Quality uses the
convention of Ignition/Cirrus Link hosts: a ``Quality`` property (Int32) only when the value is
not good (absent means good), ``Bad`` for a bad value (sent as ``is_null``), ``Bad_Stale`` for a
stale one (the last value is kept), and a ``reason`` property saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.uplink.sparkplug.schema import DataType

#: Ignition 8 quality codes (signed Int32), written as the protobuf's unsigned 32-bit field.
QUALITY_CODES = {"bad": -2147483136, "stale": -2147483132}
UINT32 = 1 << 32


def datatype_of(value: Any) -> DataType | None:
    """The Sparkplug type for a reading's value (None: no value to judge by)."""
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int | float):
        return DataType.DOUBLE
    if isinstance(value, str):
        return DataType.STRING
    return None


@dataclass
class MetricDef:
    """One point of one device, as born: the host knows it by this alias and type."""

    name: str
    alias: int
    datatype: DataType
    unit: str | None = None
    #: the last reading sent (a DBIRTH carries the current value of every metric)
    value: Any = None
    quality: str = "bad"
    reason: str | None = None
    ts_ms: int = 0


@dataclass
class DeviceMetrics:
    """A device's metrics, in the order they were first seen."""

    metrics: dict[str, MetricDef] = field(default_factory=dict)


def set_value(metric: Any, datatype: DataType, value: Any) -> None:
    """Write ``value`` into the oneof field its data type uses (specification, "Metric")."""
    if datatype is DataType.DOUBLE:
        metric.double_value = float(value)
    elif datatype is DataType.BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype is DataType.STRING:
        metric.string_value = str(value)
    elif datatype is DataType.INT64:
        metric.long_value = int(value) % (1 << 64)
    else:  # pragma: no cover - the types above are the only ones we declare
        raise ValueError(f"no encoding for {datatype!r}")


def fill(metric: Any, m: MetricDef, *, birth: bool) -> None:
    """One metric of a DBIRTH (name, alias, datatype, unit) or a DDATA (alias only)."""
    if birth:
        metric.name = m.name
        metric.datatype = int(m.datatype)
    metric.alias = m.alias
    metric.timestamp = m.ts_ms
    if m.quality == "bad" or m.value is None:
        metric.is_null = True
    else:
        set_value(metric, m.datatype, m.value)
    props: list[tuple[str, DataType, Any]] = []
    if birth and m.unit:
        props.append(("engUnit", DataType.STRING, m.unit))
    code = None if m.quality == "good" else QUALITY_CODES.get(m.quality, QUALITY_CODES["bad"])
    if code is not None:
        props.append(("Quality", DataType.INT32, code))
        if m.reason:
            props.append(("reason", DataType.STRING, m.reason))
    if props:
        ps = metric.properties
        for key, ptype, pvalue in props:
            ps.keys.append(key)
            pv = ps.values.add()
            pv.type = int(ptype)
            if ptype is DataType.INT32:
                pv.int_value = pvalue % UINT32
            else:
                pv.string_value = pvalue
