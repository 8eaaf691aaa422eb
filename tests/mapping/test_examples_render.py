"""The two worked examples in config/examples/ rendered on real (committed, chained) records."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.mapping.helpers import alarm, formatter_file, messages, stored, telemetry

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def test_province_a_telemetry_alarm_and_plain_event(tmp_path: Path) -> None:
    from buffer.record import Kind, Record

    event = Record("meter-main", Kind.EVENT, {"event": "device_state", "state": "ok"}, ts=1795572600.5, clock_synced=True)
    recs = stored(tmp_path, [telemetry(), alarm(), event])
    fmt = formatter_file(EXAMPLES / "platform_mapping_province_a.yaml")
    out = messages(fmt, recs)
    assert out[0] == (
        "mine/370802001/realtime/370802001MT0001",
        {
            "mineCode": "370802001",
            "deviceCode": "370802001MT0001",
            "collectTime": "2026-11-25 10:10:00",
            "data": [
                {"tag": "370802001MT0001_p_total", "value": 45.5, "unit": "kW", "state": 0, "time": "2026-11-25 10:10:00"},
                {"tag": "370802001MT0001_u_l1", "value": 231, "unit": "V", "state": 2, "time": "2026-11-25 10:10:00"},
            ],
            "seq": recs[0].seq,
            "chain": orjson.loads(recs[0].doc)["chain"],
        },
    )
    assert out[1] == (
        "mine/370802001/alarm",
        {
            "mineCode": "370802001",
            "deviceCode": "370802001CM0003",
            "alarmId": "cam-3:occupancy_limit:landing",
            "alarmType": "1001",
            "alarmState": "raised",
            "level": "same_day",
            "alarmTime": "2026-11-25 10:10:00",
            "detail": {"alarm": "occupancy_limit", "state": "raised", "zone": "landing", "count": 11, "limit": 10},
            "seq": recs[1].seq,
            "chain": orjson.loads(recs[1].doc)["chain"],
        },
    )
    # no event route, no default: today's chained JSON on today's topic, byte for byte
    assert out[2] == ("headframe/mine-a/gw-01/event/meter-main", orjson.loads(recs[2].doc))
    assert fmt.counters()["mapped"] == 2 and fmt.counters()["fallback"] == 0


def test_thingsboard_telemetry_alarm_attributes_and_mirror(tmp_path: Path) -> None:
    from buffer.record import Kind, Record

    event = Record("boiler-1", Kind.EVENT, {"event": "device_state", "state": "offline"}, ts=1795572601.0, clock_synced=True)
    recs = stored(tmp_path, [telemetry("boiler-1"), alarm("cam-3"), event], gateway="gw-07", site="plant-b")
    out = messages(formatter_file(EXAMPLES / "platform_mapping_thingsboard.yaml"), recs)
    ts_ms = 1795572600125
    assert out[0] == ("v1/gateway/telemetry", {"boiler-1": [{"ts": ts_ms, "values": {"p_total": 45.5, "u_l1": 231}}]})
    assert out[1] == ("headframe/plant-b/gw-07/telemetry/boiler-1", orjson.loads(recs[0].doc))  # the mirror
    assert out[2] == (
        "v1/gateway/telemetry",
        {
            "cam-3": [
                {
                    "ts": ts_ms,
                    "values": {
                        "alarm_occupancy_limit": "raised",
                        "alarm_id": "cam-3:occupancy_limit:landing",
                        "alarm_severity": "same_day",
                    },
                }
            ]
        },
    )
    mirror = out[3]
    assert mirror[0] == "headframe/plant-b/gw-07/alarm/cam-3" and mirror[1]["attachments"][0]["data"] == "/9hqcGc="
    assert out[4] == (
        "v1/gateway/attributes",
        {
            "boiler-1": {
                "last_event": {"event": "device_state", "state": "offline"},
                "last_event_at": "2026-11-25T02:10:01.000Z",
                "hf_seq": recs[2].seq,
            }
        },
    )
    assert len(out) == 6


def test_the_record_variable_carries_a_verifiable_chain_inside_a_platform_payload(tmp_path: Path) -> None:
    """Evidence level 2 (docs/mqtt.md): the chained document inside the platform's message."""
    from buffer import verify
    from tests.mapping.helpers import KEY, formatter_yaml
    from tests.mapping.test_template import mapping

    recs = stored(tmp_path, [telemetry(), alarm(), telemetry(ts=1795572601.0)])
    fmt = formatter_yaml(mapping('default: {topic: "p/${kind}", payload: {platform: "x", evidence: "${record}"}}'))
    docs = [body["evidence"] for _, body in messages(fmt, recs)]
    assert [d["seq"] for d in docs] == [1, 2, 3]
    assert verify(docs, KEY) == []
    docs[1]["payload"]["count"] = 9  # altered on the way: the chain says so
    assert [p.seq for p in verify(docs, KEY)] == [2]
    assert verify([docs[0], docs[2]], KEY), "a record removed from the platform's stream is seen"
