"""The positioning system's headcount as an MQTT value, end to end, and its strict parser.

A real mosquitto, the agent as a real process (``headframe run``) whose headcount rule counts
``line_crossing`` events committed through its real record path (``tests.support.crossinggen``),
and a client standing in for the personnel-positioning system publishing on the configured topic.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.uplink.commands import Invalid
from agent.uplink.external import ExternalCountInbox, parse_count
from buffer.record import Kind, Record
from config import load_settings_text
from config.errors import ConfigError
from config.rules.headcount import ExternalCount
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker

ROOT = "headframe/test-site/gw-test/"
PPS_TOPIC = "kj69/site-1/headcount"
FIELD = "shafts.main.people"


def shaft_config(external: list[dict[str, Any]]) -> dict[str, Any]:
    """One shaft fed by one (disabled: no worker) camera line, reconciled 12 h from now."""
    far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    return {
        "shafts": [{"name": "main", "limit": 500, "reconcile_at": far}],
        "cameras": [
            {
                "id": "cam-a",
                "url": "x",
                "enabled": False,
                "lines": [{"name": "gate", "points": [[0, 0], [1, 1]], "shaft": "main"}],
            }
        ],
        "rules": {"headcount": {"timezone": "UTC", "external": external}},
    }


def docs(collector: Collector, topic: str, key: str = "", value: str = "") -> list[dict[str, Any]]:
    out = [m.json() for m in collector.snapshot() if m.topic == topic]
    return [d for d in out if not key or d["payload"].get(key) == value]


def pps(collector: Collector, payload: bytes | dict[str, Any] | int, retain: bool = False) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    collector.client.publish(PPS_TOPIC, body, qos=1, retain=retain).wait_for_publish(5)


def count(n: Any) -> dict[str, Any]:
    return {"ts": "2026-11-25T17:00:00Z", "shafts": {"main": {"people": n}, "vent": {"people": 1}}}


HOSTILE: list[tuple[bytes, str]] = [
    (b"\x1b[2J not json\n", "not JSON"),
    (json.dumps(count("42")).encode(), "is a str, not a number"),
    (json.dumps(count(-1)).encode(), "out of range"),
    (json.dumps(count(100001)).encode(), "out of range"),
    (json.dumps(count(2.5)).encode(), "not a whole number"),
    (json.dumps(count(True)).encode(), "is a bool"),
    (json.dumps(count(None)).encode(), "is a null"),
    (b'{"shafts": {"main": {"people": NaN}}}', "not JSON"),
    (b'{"shafts": {"main": {"people": 1e999}}}', "not JSON"),
    (b'{"shafts": {"main": {"people": 3, "people": 90}}}', "appears twice"),
    (b'{"shafts": {"main": 3}}', "shafts.main is not a JSON object"),
    (b'{"shafts": {}}', "is missing"),
    (b"[3]", "the payload is not a JSON object"),
    (b'{"pad": "' + b"x" * 5000 + b'"}', "exceeds 4096"),
]


@pytest.mark.parametrize(("payload", "reason"), HOSTILE)
def test_hostile_counts_are_invalid(payload: bytes, reason: str) -> None:
    with pytest.raises(Invalid, match=reason.replace("(", r"\(")):
        parse_count(payload, FIELD)


def test_valid_counts() -> None:
    assert parse_count(json.dumps(count(42)).encode(), FIELD) == 42
    assert parse_count(json.dumps(count(7.0)).encode(), FIELD) == 7
    assert parse_count(b" 12 ", None) == 12
    with pytest.raises(Invalid, match="the payload is a dict"):
        parse_count(b'{"people": 3}', None)


class RecordingBuffer:
    """A fake of ``Buffer.emit`` only, for the flood limit's arithmetic (the real path is the
    end-to-end test below)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def emit(self, record: Record) -> None:
        self.records.append(record)


def test_a_flood_is_dropped_counted_and_reported_never_silent() -> None:
    ext = ExternalCount.model_validate({"shaft": "main", "mqtt": {"topic": PPS_TOPIC, "field": FIELD}})
    buf = RecordingBuffer()
    inbox = ExternalCountInbox([ext], buf)  # type: ignore[arg-type]  # emit is all it uses
    for i in range(200):  # 200 messages in 2 s: 20 burst + ~10 refilled pass, the rest dropped
        inbox.on_message(PPS_TOPIC, b"junk" if i % 2 else json.dumps(count(5)).encode(), now=1000 + i / 100)
    inbox.on_message("other/topic", json.dumps(count(5)).encode(), now=1002.0)  # not ours: nothing
    inbox.flush(now=1003.0, mono=1003.0)
    values = [r for r in buf.records if r.kind is Kind.TELEMETRY]
    rejected = [r.payload for r in buf.records if r.payload.get("event") == "external_count_rejected"]
    (flood,) = [r.payload for r in buf.records if r.payload.get("event") == "external_count_flood"]
    assert len(values) == inbox.accepted and len(rejected) == inbox.rejected and inbox.accepted + inbox.rejected < 40
    assert flood["dropped"] == inbox.flooded == 200 - inbox.accepted - inbox.rejected
    assert {r.source for r in values} == {"pps-main"} and rejected[0]["reason"] == "payload is not JSON"


def test_config_names_the_key() -> None:
    ok = {"shaft": "main", "mqtt": {"topic": PPS_TOPIC, "field": "people"}}
    assert ExternalCount.model_validate(ok).feed_source == "pps-main"
    for bad, msg in [
        ({"shaft": "main"}, "either 'device' and 'point'"),
        ({**ok, "device": "pps-1", "point": "people"}, "not both"),
        ({**ok, "mqtt": {"topic": "kj69/+/headcount"}}, "without the wildcards"),
        ({**ok, "mqtt": {"topic": "kj69/#"}}, "without the wildcards"),
        ({**ok, "mqtt": {"topic": "$SYS/broker/clients"}}, "not starting with '\\$'"),
        ({**ok, "mqtt": {"topic": "t/" + "x" * 300}}, "1-256 bytes"),
        ({**ok, "mqtt": {"topic": PPS_TOPIC, "field": "a..b"}}, "dotted path"),
        ({**ok, "mqtt": {"topic": PPS_TOPIC, "qos": 2}}, "qos"),
    ]:
        with pytest.raises(ValidationError, match=msg):
            ExternalCount.model_validate(bad)
    doc = {"gateway": {"site": "test-site", "id": "gw-test"}, **shaft_config([{**ok, "source": "cam-a"}])}
    with pytest.raises(ConfigError) as exc:
        load_settings_text(json.dumps(doc))
    assert "rules.headcount.external[0].source: found 'cam-a'; expected a source id that no device or camera uses" in str(
        exc.value
    )
    doc = {"gateway": {"site": "test-site", "id": "gw-test"}, **shaft_config([{**ok, "mqtt": {"topic": ROOT + "x"}}])}
    with pytest.raises(ConfigError, match=r"rules\.headcount\.external\[0\]\.mqtt\.topic: found .* outside the gateway's own"):
        load_settings_text(json.dumps(doc))


def test_mqtt_count_compared_mismatch_alarms_and_clears_hostile_rejected(tmp_path: Path, broker: MosquittoBroker) -> None:
    collector = Collector(broker).start()
    # a retained count from long ago: must never be compared (3 counted vs 50 would alarm)
    pps(collector, count(50), retain=True)
    external = [{"shaft": "main", "mqtt": {"topic": PPS_TOPIC, "field": FIELD}, "tolerance": 1, "for": "2s", "max_age": "60s"}]
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", extra=shaft_config(external))
    env = {"HEADFRAME_EXTRA_PRODUCERS": "tests.support.crossinggen", "CROSSINGS_PATTERN": "in", "CROSSINGS_TOTAL": "3"}
    agent = AgentProcess(cfg, env=env)
    values, alarms, events = ROOT + "telemetry/pps-main", ROOT + "alarm/main", ROOT + "event/pps-main"
    try:
        collector.wait_for(lambda _: any(d["payload"]["underground"] == 3 for d in docs(collector, ROOT + "event/main")))
        collector.wait_for(lambda _: docs(collector, events, "event", "external_count_rejected"))
        (retained,) = docs(collector, events, "event", "external_count_rejected")
        assert retained["payload"]["reason"].startswith("retained message") and retained["payload"]["shaft"] == "main"
        pps(collector, count(3))
        collector.wait_for(lambda _: docs(collector, values))
        first = docs(collector, values)[0]
        assert first["source"] == "pps-main" and first["kind"] == "telemetry"
        assert first["payload"]["values"] == {"people_underground": {"v": 3, "q": "good"}}
        pps(collector, count(4))  # 1 apart: within the tolerance
        collector.wait_for(lambda _: len(docs(collector, values)) == 2)
        t_agree = time.monotonic()
        while time.monotonic() - t_agree < 3.0:  # longer than 'for': agreeing raises nothing
            time.sleep(0.1)
        assert docs(collector, alarms) == []

        pps(collector, count(10))
        collector.wait_for(lambda _: docs(collector, alarms, "state", "raised"), timeout=15)
        (raised,) = docs(collector, alarms, "state", "raised")
        p = raised["payload"]
        assert (p["alarm"], p["id"]) == ("headcount_mismatch", "headcount:mismatch:main")
        ev = p["evidence"]
        assert (ev["underground"], ev["external"], ev["device"], ev["topic"]) == (3, 10, "pps-main", PPS_TOPIC)
        value_ts = datetime.fromisoformat(docs(collector, values)[-1]["ts"]).timestamp()
        assert datetime.fromisoformat(raised["ts"]).timestamp() - value_ts >= 2.0, "raised before 'for' had passed"

        for payload, _ in HOSTILE:  # invalid counts: recorded, never a value, the alarm untouched
            pps(collector, payload)
        collector.wait_for(lambda _: len(docs(collector, events, "event", "external_count_rejected")) == 1 + len(HOSTILE))
        reasons = [d["payload"]["reason"] for d in docs(collector, events, "event", "external_count_rejected")[1:]]
        for (_, want), got in zip(HOSTILE, reasons, strict=True):
            assert want in got, (want, got)
        assert len(docs(collector, values)) == 3

        pps(collector, count(2))  # the agent lives, and agrees again: cleared
        collector.wait_for(lambda _: docs(collector, alarms, "state", "cleared"))
        assert [d["payload"]["state"] for d in docs(collector, alarms)] == ["raised", "cleared"]
    finally:
        assert agent.terminate() == 0, agent.output()[-3000:]
        collector.stop()
    log = agent.output()
    for marker in ("not json", "xxxxxxxx", '"42"', "NaN", "1e999", '"vent"'):
        assert marker not in log, f"a payload reached the log ({marker})"


def test_one_flooding_feed_does_not_starve_another_shafts_count() -> None:
    north = ExternalCount.model_validate({"shaft": "north", "mqtt": {"topic": "kj/north/people", "field": FIELD}})
    south = ExternalCount.model_validate({"shaft": "south", "mqtt": {"topic": "kj/south/people", "field": FIELD}})
    buf = RecordingBuffer()
    inbox = ExternalCountInbox([north, south], buf)  # type: ignore[arg-type]  # emit is all it uses
    for i in range(60):  # north floods at 20/s for 3 s; south sends one count a second
        inbox.on_message("kj/north/people", json.dumps(count(5)).encode(), now=1000 + i / 20)
        if i % 20 == 0:
            inbox.on_message("kj/south/people", json.dumps(count(7)).encode(), now=1000 + i / 20)
    inbox.flush(now=1004.0, mono=1004.0)
    south_values = [r for r in buf.records if r.kind is Kind.TELEMETRY and r.source == "pps-south"]
    assert len(south_values) == 3  # every one of south's counts got through
    (flood,) = [r.payload for r in buf.records if r.payload.get("event") == "external_count_flood"]
    assert set(flood["dropped_by_topic"]) == {"kj/north/people"}  # and the record names the flooding feed
