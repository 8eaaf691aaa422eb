"""Inbound command validation and the flood limit (pure parts of agent/uplink/commands.py)."""

from __future__ import annotations

import pytest

from agent.uplink.commands import MAX_BYTES, CommandInbox, Invalid, TokenBucket, excerpt, parse
from buffer.record import Record

TOPIC = "headframe/s/g/command"


class RecordingBuffer:
    """A fake of ``Buffer.emit`` only: keeps what would be committed (the real path is tested
    end to end in test_commands_e2e.py)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def emit(self, record: Record) -> None:
        self.records.append(record)


def test_a_valid_command_parses() -> None:
    doc = parse(b'{"id":"c-1:2.x_y","command":"ack","target":"cam-1:seal_breach","by":"li","args":{}}')
    assert doc["command"] == "ack"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (MAX_BYTES + 1), "exceeds 4096"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"id":"a","command":"ack","target":"t","rm":"-rf /"}', "unknown key(s) rm"),
        (b'{"id":"a","command":"ack"}', "missing key(s) target"),
        (b'{"id":"a b","command":"ack","target":"t"}', "id must be"),
        (b'{"id":"' + b"a" * 65 + b'","command":"ack","target":"t"}', "id must be"),
        (b'{"id":"a","command":"shutdown","target":"t"}', "command must be one of"),
        (b'{"id":"a","command":"ack","target":"' + b"t" * 129 + b'"}', "target must be"),
        (b'{"id":"a","command":"ack","target":"t","by":""}', "by must be"),
        (b'{"id":"a","command":"ack","target":"t","args":[1]}', "args must be"),
        (b'{"id":"a","command":["ack"],"target":"t"}', "command must be one of"),
        (b'{"id":"a","command":{},"target":"t"}', "command must be one of"),
        (b'{"id":"a","id":"b","command":"ack","target":"t"}', "appears twice"),
        (b'{"id":"a","command":"ack","target":"t","args":{"k":1,"k":2}}', "appears twice"),
        (b'{"id":"a","command":"ack","target":"t\\u001b[2J"}', "printable"),
        (b'{"id":"a","command":"ack","target":"t","by":"li\\nroot"}', "printable"),
        (b'{"id":"a","command":"ack","target":"t","args":' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}", "args must be"),
        (b'{"id":"a","command":"ack","target":"t","args":{"n":' + b"9" * 40 + b"}}", "args must be"),
    ],
)
def test_hostile_payloads_are_invalid(payload: bytes, reason: str) -> None:
    with pytest.raises(Invalid) as err:
        parse(payload)
    assert reason in str(err.value)


def test_excerpt_escapes_control_characters_and_truncates() -> None:
    text = excerpt(b"\x1b[2J\nline\xff" + b"z" * 500)
    assert "\n" not in text and "\x1b" not in text and text.endswith("…") and len(text) < 300
    with pytest.raises(Invalid) as err:
        parse(b'{"a\\nb":1,"id":"x"}')
    assert "\n" not in str(err.value) and "a\\nb" in str(err.value)


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=20)
    assert sum(bucket.take(0.0) for _ in range(100)) == 20
    assert sum(bucket.take(1.0) for _ in range(100)) == 10


def test_token_bucket_survives_a_clock_going_back() -> None:
    bucket = TokenBucket(rate=10, burst=20)
    assert sum(bucket.take(1000.0) for _ in range(100)) == 20
    assert sum(bucket.take(400.0) for _ in range(5)) == 0  # a time before the last one adds nothing ...
    assert sum(bucket.take(401.0) for _ in range(100)) == 10  # ... and takes nothing away either


def test_rejections_beyond_the_window_limit_are_counted_not_recorded_each() -> None:
    buf = RecordingBuffer()
    inbox = CommandInbox(TOPIC, buf, TokenBucket(rate=1000, burst=1000))  # type: ignore[arg-type]
    for i in range(100):
        inbox.on_message(TOPIC, b"junk %d" % i, now=i / 10)
    assert len([r for r in buf.records if r.payload["event"] == "command_rejected"]) == 30
    inbox.flush(now=20.0)
    floods = [r.payload for r in buf.records if r.payload["event"] == "command_flood"]
    assert sum(f["rejected_not_recorded"] for f in floods) == 70 and inbox.rejected == 100
    assert all(f["dropped"] == 0 for f in floods) and len(floods) == 2  # one 5 s after the first, one at flush


def test_a_flood_is_reported_by_its_timer_without_a_later_message() -> None:
    import asyncio

    from agent.uplink import inbound

    async def go() -> list[Record]:
        buf = RecordingBuffer()
        inbox = CommandInbox(TOPIC, buf, TokenBucket(rate=0.001, burst=1))  # type: ignore[arg-type]
        old, inbound.FIRST_REPORT_S = inbound.FIRST_REPORT_S, 0.2
        try:
            for i in range(5):
                inbox.on_message(TOPIC, b'{"id":"x%d","command":"ack","target":"a:b"}' % i)
            await asyncio.sleep(0.6)
        finally:
            inbound.FIRST_REPORT_S = old
        return buf.records

    records = asyncio.run(go())
    (flood,) = [r.payload for r in records if r.payload["event"] == "command_flood"]
    assert flood["dropped"] == 4 and flood["dropped_ids"] == ["x1", "x2", "x3", "x4"]


def test_inbox_records_commands_rejections_and_one_flood_report_a_minute() -> None:
    buf = RecordingBuffer()
    inbox = CommandInbox(TOPIC, buf)  # type: ignore[arg-type]
    inbox.on_message("other/topic", b"{}", now=0.0)
    inbox.on_message(TOPIC, b'{"id":"c1","command":"ack","target":"a:b"}', now=0.0)
    inbox.on_message(TOPIC, b"garbage", now=0.0)
    inbox.on_message(TOPIC, b'{"id":"c2","command":"ack","target":"a:b"}', retain=True, now=0.0)
    assert [r.payload["event"] for r in buf.records] == ["command", "command_rejected", "command_rejected"]
    cmd, rej, retained = (r.payload for r in buf.records)
    assert "retained" in retained["reason"]
    assert cmd | {"received": ""} == {
        "event": "command",
        "id": "c1",
        "command": "ack",
        "target": "a:b",
        "by": "platform",
        "received": "",
        "origin": "mqtt",
    }
    assert rej["reason"] == "payload is not JSON" and rej["excerpt"] == "garbage"
    assert all(r.source == "platform" for r in buf.records)
    for i in range(500):  # 500 in 5 s: ~20 + 50 pass, the rest dropped and counted
        inbox.on_message(TOPIC, b'{"id":"f%d","command":"ack","target":"a:b"}' % i, now=i / 100)
    assert not [r for r in buf.records if r.payload["event"] == "command_flood"]  # due 5 s after the first drop
    inbox.on_message(TOPIC, b'{"id":"g1","command":"ack","target":"a:b"}', now=6.0)
    (first,) = [r.payload for r in buf.records if r.payload["event"] == "command_flood"]
    assert first["dropped"] == inbox.flooded  # every drop so far is in it
    # the first ids dropped, in order: the burst (less the three used above) passed first
    assert len(first["dropped_ids"]) == 50 and all(i.startswith("f") for i in first["dropped_ids"])
    assert 15 <= int(first["dropped_ids"][0][1:]) <= 20
    before = inbox.flooded
    for i in range(100):  # a second flood soon after: reported a minute after the first report
        inbox.on_message(TOPIC, b'{"id":"h%d","command":"ack","target":"a:b"}' % i, now=7.0 + i / 1000)
    inbox.on_message(TOPIC, b'{"id":"late1","command":"ack","target":"a:b"}', now=30.0)
    assert len([r for r in buf.records if r.payload["event"] == "command_flood"]) == 1
    inbox.on_message(TOPIC, b'{"id":"late2","command":"ack","target":"a:b"}', now=66.5)
    second = [r.payload for r in buf.records if r.payload["event"] == "command_flood"][1]
    assert second["dropped"] == inbox.flooded - before and second["dropped_ids"][0].startswith("h")
    assert buf.records[-1].payload["id"] == "late2"  # the late command itself went through
    assert inbox.counters()["wrong_topic"] == 1
