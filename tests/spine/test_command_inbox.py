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
    for i in range(500):  # 500 in 5 s: ~20 + 50 pass, the rest counted
        inbox.on_message(TOPIC, b'{"id":"f%d","command":"ack","target":"a:b"}' % i, now=i / 100)
    floods = [r.payload for r in buf.records if r.payload["event"] == "command_flood"]
    assert len(floods) == 1 and floods[0]["dropped"] == 1
    assert inbox.counters()["accepted"] <= 1 + 20 + 51 - 3
    inbox.on_message(TOPIC, b'{"id":"late","command":"ack","target":"a:b"}', now=70.0)
    floods = [r.payload for r in buf.records if r.payload["event"] == "command_flood"]
    assert len(floods) == 2 and floods[1]["dropped"] == inbox.flooded - 1
    assert inbox.counters()["wrong_topic"] == 1
