"""SparkplugFormatter rules that an end-to-end run reaches too rarely to test in seconds: seq
wrapping, DDEATH in seq order among leased records, quality, re-birth on a new metric, what
stays JSON. The MQTT session is a FAKE that records publishes (the real one is covered by
tests/spine/test_sparkplug.py); every payload is decoded with pysparkplug, not with our schema.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pysparkplug as spb
import pytest
from pysparkplug import _protobuf as spb_pb

from agent.uplink.formatters import Topics
from agent.uplink.sparkplug import SparkplugFormatter
from buffer.boundary import StoredRecord
from buffer.record import Kind
from config import load_settings_text

PREFIX = "spBv1.0/mine-a/"


class FakeSession:
    """Records what the formatter publishes; stands in for the MQTT session."""

    lost = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.handlers: dict[str, Callable[[str, bytes, bool], None]] = {}

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload))

    def subscribe(self, topic: str, on_message: Callable[[str, bytes, bool], None]) -> None:
        self.handlers[topic] = on_message


def rec(seq: int, source: str, kind: Kind, payload: dict[str, Any]) -> StoredRecord:
    doc = {"seq": seq, "source": source, "kind": kind.value, "payload": payload, "chain": "x"}
    return StoredRecord(seq, source, kind, 1_700_000_000.0 + seq, orjson.dumps(doc), ())


def reading(seq: int, source: str = "plc", **values: Any) -> StoredRecord:
    vals = {k: (v if isinstance(v, dict) else {"v": v, "q": "good"}) for k, v in values.items()}
    return rec(seq, source, Kind.TELEMETRY, {"group": "default", "values": vals})


def state(seq: int, source: str, st: str) -> StoredRecord:
    return rec(seq, source, Kind.EVENT, {"event": "device_state", "state": st, "previous": "ok", "reason": None})


@pytest.fixture
def node(tmp_path: Path) -> tuple[SparkplugFormatter, FakeSession]:
    settings = load_settings_text(
        f"gateway: {{site: mine-a, id: gw-01}}\nbuffer: {{path: {tmp_path / 'b.db'}}}\nuplink: {{format: sparkplug}}\n"
    )
    fmt = SparkplugFormatter(settings, Topics(settings))
    fmt.will()
    session = FakeSession()
    fmt.begin(session)  # type: ignore[arg-type]  # the fake has the session's publish/subscribe
    return fmt, session


def kinds(session: FakeSession) -> list[str]:
    return ["/".join(t.split("/")[2:5:2]) if t.count("/") > 3 else t.split("/")[2] for t, _ in session.sent]


def test_seq_wraps_after_255_across_births_and_data(node) -> None:
    fmt, session = node
    wire: list[bytes] = []  # every node message in the order it goes out
    for i in range(300):
        msg = fmt.format(reading(i + 1, p=float(i)))
        wire += [p for _, p in session.sent[len(wire) - i :]] + [msg.payload]
    seqs = [spb_pb.Payload.FromString(p).seq for p in wire]
    assert kinds(session) == ["NBIRTH", "DBIRTH/plc"]
    assert seqs == [i % 256 for i in range(302)]  # NBIRTH 0, DBIRTH 1, DDATA 2..255, 0..45


def test_ddeath_waits_for_older_telemetry_then_device_is_reborn(node) -> None:
    fmt, session = node
    fmt.format(reading(1, p=1.0))
    # leased in priority order: the offline event (seq 10) before telemetry committed earlier (seq 8)
    assert fmt.format(state(10, "plc", "backoff")).topic == "headframe/mine-a/gw-01/event/plc"
    assert fmt.format(reading(8, p=2.0)).topic == PREFIX + "DDATA/gw-01/plc"  # still alive at seq 8
    assert "DDEATH" not in str(kinds(session))
    after = fmt.format(reading(12, p={"v": None, "q": "bad", "reason": "timeout"}))
    assert after.topic == "headframe/mine-a/gw-01/telemetry/plc"  # a dead device's readings stay JSON
    assert kinds(session)[-1] == "DDEATH/plc"
    assert spb.DDeath.decode(session.sent[-1][1]).seq == 4  # NBIRTH 0, DBIRTH 1, DDATA 2, 3
    fmt.format(state(20, "plc", "ok"))
    back = fmt.format(reading(21, p=5.0))
    assert back.topic == PREFIX + "DDATA/gw-01/plc" and kinds(session)[-1] == "DBIRTH/plc"
    # the old offline event leased again (a session was lost before its PUBACK) changes nothing
    fmt.format(state(10, "plc", "backoff"))
    assert fmt.format(reading(22, p=6.0)).topic == PREFIX + "DDATA/gw-01/plc"
    assert kinds(session).count("DDEATH/plc") == 1


def test_quality_new_metric_and_type_change_rebirth_the_device(node) -> None:
    fmt, session = node
    fmt.format(reading(1, p=1.0))
    msg = fmt.format(
        reading(2, p={"v": 7.5, "q": "stale", "reason": "not refreshed"}, q={"v": None, "q": "bad", "reason": "timeout"})
    )
    births = [spb.DBirth.decode(p) for t, p in session.sent if "/DBIRTH/" in t]
    assert len(births) == 2 and [m.name for m in births[1].metrics] == ["p", "q"]
    assert births[0].metrics[0].alias == births[1].metrics[0].alias  # an alias never changes
    raw = spb_pb.Payload.FromString(msg.payload)
    props = {m.alias: dict(zip(m.properties.keys, m.properties.values, strict=True)) for m in raw.metrics}
    p_alias, q_alias = (m.alias for m in births[1].metrics)
    assert raw.metrics[0].double_value == 7.5 and props[p_alias]["Quality"].int_value == (-2147483132) % (1 << 32)
    assert raw.metrics[1].is_null and props[q_alias]["Quality"].int_value == (-2147483136) % (1 << 32)
    assert props[q_alias]["reason"].string_value == "timeout"
    odd = spb_pb.Payload.FromString(fmt.format(reading(3, p={"v": 1.0, "q": "uncertain"})).payload).metrics[0]
    assert dict(zip(odd.properties.keys, odd.properties.values, strict=True))["Quality"].int_value == (-2147483136) % (1 << 32)
    fmt.format(reading(4, p="OPEN"))  # a point whose value turns to text is born again as String
    last = spb.DBirth.decode([p for t, p in session.sent if "/DBIRTH/" in t][-1])
    assert last.metrics[0].datatype is spb.DataType.STRING


def test_what_is_not_a_scalar_reading_goes_to_json_unchanged(node) -> None:
    fmt, _ = node
    alarm = rec(5, "cam-1", Kind.ALARM, {"alarm": "seal_breach", "state": "raised"})
    assert fmt.format(alarm) == ("headframe/mine-a/gw-01/alarm/cam-1", alarm.doc)
    odd = reading(6, source="cam-1", zones={"v": [1, 2], "q": "good"})
    assert fmt.format(odd).topic == "headframe/mine-a/gw-01/telemetry/cam-1"
    counts = rec(7, "cam-1", Kind.TELEMETRY, {"counts": {"in": 3}})
    assert fmt.format(counts).payload == counts.doc


def test_ncmd_only_rebirth_true_acts(node, caplog) -> None:
    fmt, session = node
    fmt.format(reading(1, p=1.0))
    ncmd = session.handlers["spBv1.0/mine-a/NCMD/gw-01"]
    before = len(session.sent)

    def cmd(name: str, dt: spb.DataType, value: Any, alias: int | None = None) -> bytes:
        m = spb.Metric(timestamp=1, name=name or None, datatype=dt, value=value, alias=alias)
        return spb.NCmd(timestamp=1, metrics=(m,)).encode(include_dtypes=True)

    ncmd("t", cmd("Node Control/Rebirth", spb.DataType.BOOLEAN, True), True)  # retained: stale
    ncmd("t", cmd("Node Control/Rebirth", spb.DataType.INT64, 1), False)
    ncmd("t", cmd("", spb.DataType.BOOLEAN, True, alias=99), False)
    assert len(session.sent) == before
    assert "ignored a retained NCMD" in caplog.text and "NCMD metric 'Node Control/Rebirth'" in caplog.text
    ncmd("t", cmd("Node Control/Rebirth", spb.DataType.BOOLEAN, True), False)
    assert kinds(session)[before:] == ["NBIRTH", "DBIRTH/plc"]
    ncmd("t", cmd("Node Control/Rebirth", spb.DataType.BOOLEAN, True), False)  # within min_rebirth_interval
    assert len(session.sent) == before + 2 and "a rebirth request within 1s" in caplog.text
    assert fmt.counters()["ncmd_ignored"] == 4 and fmt.counters()["rebirths"] == 1
