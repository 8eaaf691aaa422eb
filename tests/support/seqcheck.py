"""A consumer that checks every sequence number of a gateway's stream (soaks and spine tests).

It subscribes like a platform would (QoS 1, persistent session) and keeps every record message
in arrival order. ``check_stream`` then says, against what the buffer committed, which seqs were
lost, which were delivered more than once (same content: allowed, delivery is at least once;
different content: never), which arrived out of order within their kind (the buffer leases each
kind in seq order, docs/buffer.md), and runs ``agent.verify`` over the whole stream (chain,
continuity, ``records_dropped`` accounting).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from agent.verify import verify_inputs
from agent.verify.reader import Entry, InputSet
from tests.support.broker import MosquittoBroker

ROOT = "headframe/test-site/gw-test/"


@dataclass
class Delivery:
    """The fields of one delivered record that the checks need (not the whole body)."""

    seq: int
    kind: str
    chain: str


class SeqSubscriber:
    """QoS 1, persistent session: keeps every record message in arrival order.

    Keeps the raw bodies too (``keep_bodies``) when the stream is to be verified by
    ``agent.verify`` at the end (the chain check needs every field).
    """

    def __init__(
        self, broker: MosquittoBroker, *, keep_bodies: bool = True, client_id: str = "soak-checker", root: str = ROOT
    ) -> None:
        self.broker = broker
        self.root = root
        self.keep_bodies = keep_bodies
        self.deliveries: list[Delivery] = []
        self.bodies: list[bytes] = []
        #: payloads of the distinct ``agent_started`` events, in order of first arrival
        self.starts: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.root + "#", qos=1)
            self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/status"):
            return
        body = bytes(msg.payload)
        doc = orjson.loads(body)
        d = Delivery(int(doc["seq"]), doc["kind"], doc["chain"])
        with self._lock:
            self.deliveries.append(d)
            if self.keep_bodies:
                self.bodies.append(body)
            if doc["kind"] == "event" and doc["payload"].get("event") == "agent_started":
                self.starts.setdefault(d.seq, doc["payload"])

    def start(self) -> SeqSubscriber:
        self.client.connect(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("subscriber could not connect")
        time.sleep(0.2)  # SUBACK before anything is published
        return self

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def started(self) -> int:
        """How many distinct agent starts the stream has shown so far."""
        with self._lock:
            return len(self.starts)

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def seqs(self) -> set[int]:
        with self._lock:
            return {d.seq for d in self.deliveries}

    def wait_for(self, expected: set[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected <= self.seqs():
                return True
            time.sleep(0.5)
        return False


@dataclass
class StreamCheck:
    """What a consumer saw, against what the buffer committed."""

    committed: int = 0
    delivered: int = 0  # messages, duplicates included
    distinct: int = 0
    lost: list[int] = field(default_factory=list)  # committed, not dropped on record, never delivered
    dropped_on_record: int = 0  # named in a delivered records_dropped event (evicted, accounted for)
    duplicates: int = 0  # deliveries beyond the first of a seq, same content (at least once)
    conflicts: list[int] = field(default_factory=list)  # one seq, two contents (must never happen)
    out_of_order: int = 0  # per kind: a first delivery of a lower seq after a higher one
    verify_problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not (self.lost or self.conflicts or self.out_of_order or self.verify_problems)

    def summary(self) -> dict[str, Any]:
        return {
            "committed": self.committed,
            "delivered_messages": self.delivered,
            "distinct_seqs": self.distinct,
            "lost": len(self.lost),
            "lost_first": self.lost[:10],
            "evicted_on_record": self.dropped_on_record,
            "duplicated": self.duplicates,
            "conflicting_duplicates": len(self.conflicts),
            "out_of_order": self.out_of_order,
            "verify_problems": len(self.verify_problems),
            "verify_first": self.verify_problems[:5],
        }


def dropped_seqs(bodies: list[bytes]) -> set[int]:
    """Seqs named in delivered ``records_dropped`` events (evicted with a chained record)."""
    out: set[int] = set()
    for body in bodies:
        if b"records_dropped" not in body:
            continue
        doc = orjson.loads(body)
        payload = doc.get("payload") or {}
        if payload.get("event") != "records_dropped":
            continue
        for r in payload.get("ranges", []):
            out.update(range(int(r["first"]), int(r["last"]) + 1))
    return out


def check_stream(sub: SeqSubscriber, last_seq: int, pending: set[int], key: bytes | None) -> StreamCheck:
    """Lost / duplicated / out of order, and ``agent.verify`` over the whole delivered stream.

    ``pending``: seqs still in the buffer at the end (not yet due at the broker).
    """
    with sub._lock:
        deliveries = list(sub.deliveries)
        bodies = list(sub.bodies)
    res = StreamCheck(committed=last_seq, delivered=len(deliveries))
    first: dict[int, str] = {}
    newest: dict[str, int] = {}
    for d in deliveries:
        seen = first.get(d.seq)
        if seen is not None:
            res.duplicates += 1
            if seen != d.chain:
                res.conflicts.append(d.seq)
            continue
        first[d.seq] = d.chain
        if d.seq < newest.get(d.kind, 0):
            res.out_of_order += 1
        newest[d.kind] = max(newest.get(d.kind, 0), d.seq)
    res.distinct = len(first)
    dropped = dropped_seqs(bodies)
    res.dropped_on_record = len(dropped & set(range(1, last_seq + 1)))
    res.lost = sorted(set(range(1, last_seq + 1)) - pending - dropped - first.keys())
    if bodies and key is not None:
        inputs = InputSet()
        for i, body in enumerate(bodies):
            inputs.entries.append(Entry(f"delivery {i}", orjson.loads(body)))
        report = verify_inputs(inputs, [key], silence_s=1e9)
        for gw in report.gateways:
            res.verify_problems += [f"{p.code} seq {p.seq}: {p.text}" for p in gw.problems]
    return res


def buffer_state(db_path: Path) -> tuple[int, set[int]]:
    """(last committed seq, seqs still in the buffer), read from the database file."""
    if not db_path.exists():
        return 0, set()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT last_seq FROM state").fetchone()
        return (int(row[0]) if row else 0), {r[0] for r in db.execute("SELECT seq FROM records")}
    except sqlite3.OperationalError:
        return 0, set()
    finally:
        db.close()
