"""Long-outage soak: a day of records with the broker unreachable, then reconnect and drain.

    .venv/bin/python -m bench.outage_soak [--hours 24] [--devices 100] [--rate 10000] [--max-bytes 1GiB]

Time is compressed: ``bench.outage_producer`` inside the real agent emits what ``--devices``
meters at 1 Hz would produce over ``--hours`` (one record of eight values per device per
simulated second, simulated timestamps), at ``--rate`` records per real second, while the
broker is down. The buffer caps at ``buffer.max_bytes`` (default 1 GiB) and evicts the oldest
telemetry first, each eviction named by a chained ``records_dropped`` event (docs/buffer.md).
Then mosquitto comes up and the agent drains. A subscriber with a persistent session (made
before the outage) checks every message as it arrives: the HMAC chain hash of each record, the
link to its predecessor, and that every committed seq was either delivered or named in a
delivered ``records_dropped`` range. Prints what was kept and evicted, the drain time and the
agent's memory over the run. Exit status 1 on a lost seq, a bad hash or link, or disorder.
Not modelled: TTL (it counts real time since commit, so it never fires in compressed time;
``buffer.ttl.health`` is 1 day, so a real day-long outage would also expire old health records).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from bench.soaklib import memory
from buffer.chain import link
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import MosquittoBroker
from tests.support.seqcheck import ROOT, buffer_state


class StreamingChecker:
    """Checks each record as it arrives and keeps 17 bytes per seq, not the message."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.broker = broker
        self.key: bytes | None = None
        self.lock = threading.Lock()
        self.count = bytearray(1 << 20)
        self.prev8 = bytearray(8 << 20)
        self.chain8 = bytearray(8 << 20)
        self.messages = 0
        self.bad_hash: list[int] = []
        self.out_of_order = 0
        self.newest: dict[str, int] = {}
        self.drops: list[dict[str, Any]] = []
        self.ts_range: dict[str, list[str]] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outage-checker", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(ROOT + "#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)

    def _grow(self, seq: int) -> None:
        while seq >= len(self.count):
            n = len(self.count)
            self.count.extend(bytes(n))
            self.prev8.extend(bytes(8 * n))
            self.chain8.extend(bytes(8 * n))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/status"):
            return
        doc = orjson.loads(msg.payload)
        seq = int(doc["seq"])
        good = self.key is not None and link(doc["prev"], doc, self.key) == doc["chain"]
        with self.lock:
            now = time.monotonic()
            self.first_at = self.first_at or now
            self.last_at = now
            self.messages += 1
            if not good:
                self.bad_hash.append(seq)
            self._grow(seq)
            first = self.count[seq] == 0
            self.count[seq] = min(255, self.count[seq] + 1)
            if not first:
                return
            self.prev8[8 * seq : 8 * seq + 8] = bytes.fromhex(doc["prev"][:16])
            self.chain8[8 * seq : 8 * seq + 8] = bytes.fromhex(doc["chain"][:16])
            kind = doc["kind"]
            if seq < self.newest.get(kind, 0):
                self.out_of_order += 1
            self.newest[kind] = max(self.newest.get(kind, 0), seq)
            span = self.ts_range.setdefault(kind, [doc["ts"], doc["ts"]])
            span[0], span[1] = min(span[0], doc["ts"]), max(span[1], doc["ts"])
            if kind == "event" and doc["payload"].get("event") == "records_dropped":
                self.drops.append(doc["payload"])

    def start(self) -> StreamingChecker:
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        time.sleep(0.5)
        return self

    def delivered(self, seq: int) -> bool:
        return seq < len(self.count) and self.count[seq] > 0

    def distinct(self, upto: int) -> int:
        with self.lock:
            return sum(1 for s in range(1, min(upto + 1, len(self.count))) if self.count[s])

    def report(self, last: int, pending: set[int]) -> dict[str, Any]:
        """Lost seqs, broken links (also across evicted ranges), duplicates, what was evicted."""
        with self.lock:
            dropped: set[int] = set()
            range_problems = 0
            for p in self.drops:
                for r in p.get("ranges", []):
                    first, lst = int(r["first"]), int(r["last"])
                    dropped.update(range(first, lst + 1))
                    if self.delivered(first - 1) and bytes(self.chain8[8 * (first - 1) : 8 * first]) != bytes.fromhex(
                        r["prev"][:16]
                    ):
                        range_problems += 1
                    if self.delivered(lst + 1) and bytes(self.prev8[8 * (lst + 1) : 8 * lst + 16]) != bytes.fromhex(
                        r["chain"][:16]
                    ):
                        range_problems += 1
            lost, links, dups, delivered = [], 0, 0, 0
            for s in range(1, last + 1):
                c = self.count[s] if s < len(self.count) else 0
                if not c:
                    if s not in dropped and s not in pending:
                        lost.append(s)
                    continue
                delivered += 1
                dups += c - 1
                if self.delivered(s - 1) and self.prev8[8 * s : 8 * s + 8] != self.chain8[8 * (s - 1) : 8 * s]:
                    links += 1
            by_reason: dict[str, int] = {}
            by_kind: dict[str, int] = {}
            for p in self.drops:
                by_reason[p["reason"]] = by_reason.get(p["reason"], 0) + int(p["count"])
                for k, v in p.get("by_kind", {}).items():
                    by_kind[k] = by_kind.get(k, 0) + int(v)
            return {
                "committed": last,
                "delivered_distinct": delivered,
                "messages": self.messages,
                "duplicated": dups,
                "lost": len(lost),
                "lost_first": lost[:10],
                "evicted_seqs_named": len(dropped),
                "records_dropped_events": len(self.drops),
                "evicted_by_reason": by_reason,
                "evicted_by_kind": by_kind,
                "bad_hashes": len(self.bad_hash),
                "broken_links": links,
                "range_link_problems": range_problems,
                "out_of_order": self.out_of_order,
                "kept_ts_span": self.ts_range,
            }


def db_summary(db_path: Path) -> dict[str, Any]:
    """What the buffer holds (per kind priority), its byte count and counters, and its files' size."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        kinds = {
            int(p): (int(n), int(b)) for p, n, b in db.execute("SELECT prio, count(*), sum(size) FROM records GROUP BY prio")
        }
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        total = db.execute("SELECT total_bytes FROM state").fetchone()[0]
    finally:
        db.close()
    size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
    return {"records_by_prio": kinds, "total_bytes": total, "counters": counters, "files_mb": round(size / 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated outage length")
    ap.add_argument("--devices", type=int, default=100, help="meters at 1 Hz")
    ap.add_argument("--rate", type=float, default=10000.0, help="records emitted per real second")
    ap.add_argument("--max-bytes", default=None, help="buffer.max_bytes (default: the agent's default, 1 GiB)")
    ap.add_argument("--max-outage-min", type=float, default=0.0, help="end the outage after this many real minutes (0: never)")
    ap.add_argument("--keep", type=Path, help="keep the work directory here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="outage-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(work / "broker").start()
    checker = StreamingChecker(broker).start()  # the persistent session exists before the outage
    broker.stop()
    db = work / "buf.db"
    extra: dict[str, Any] = {"health": {"interval": "30s"}}
    if args.max_bytes:
        extra["buffer"] = {"max_bytes": args.max_bytes}
    cfg = write_config(work / "agent.yaml", broker.port, buffer_path=db, extra=extra, reconnect_max="2s")
    progress = work / "progress.json"
    env = {
        "HEADFRAME_EXTRA_PRODUCERS": "bench.outage_producer",
        "OUTAGE_DEVICES": str(args.devices),
        "OUTAGE_HOURS": str(args.hours),
        "OUTAGE_RATE": str(args.rate),
        "OUTAGE_PROGRESS": str(progress),
    }
    t0 = time.monotonic()
    agent = AgentProcess(cfg, env=env, log=work / "agent.log")
    try:
        return run(args, work, broker, checker, agent, db, progress, t0)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
        broker.stop()


def run(
    args: argparse.Namespace,
    work: Path,
    broker: MosquittoBroker,
    checker: StreamingChecker,
    agent: AgentProcess,
    db: Path,
    progress: Path,
    t0: float,
) -> int:
    """The outage, the drain and the report."""
    total = int(args.hours * 3600) * args.devices
    print(f"work dir {work}; {args.devices} devices x {args.hours} h = {total} records at {args.rate}/s", flush=True)
    rss_ingest: list[float] = []
    state: dict[str, Any] = {}
    while agent.proc.poll() is None:
        time.sleep(10)
        mem = memory(agent.proc.pid)
        rss_ingest.append(mem.get("rss", 0))
        state = json.loads(progress.read_text()) if progress.exists() else {}
        if args.max_outage_min and time.monotonic() - t0 > args.max_outage_min * 60:
            progress.with_suffix(".stop").touch()
        last = buffer_state(db)[0] if state.get("done") else 0
        print(
            f"outage t={time.monotonic() - t0:6.0f}s simulated={state.get('sim_s', 0) / 3600:5.2f} h"
            f" emitted={state.get('emitted', 0)} rss={mem.get('rss', 0):6.1f} MB anon={mem.get('anonymous', 0):6.1f}",
            flush=True,
        )
        if state.get("done") and last and last == buffer_state(db)[0]:
            time.sleep(3)
            if last == buffer_state(db)[0]:
                break
    ingest_s = time.monotonic() - t0
    if agent.proc.poll() is not None:
        print("the agent exited during the outage:\n" + agent.output()[-3000:])
        return 1
    before = db_summary(db)
    print("buffer at the end of the outage:", json.dumps(before), flush=True)
    checker.key = (db.parent / "chain.key").read_bytes().strip()
    t1 = time.monotonic()
    broker.start()
    rss_drain: list[float] = []
    drained_at: float | None = None
    while agent.proc.poll() is None:
        time.sleep(5)
        mem = memory(agent.proc.pid)
        rss_drain.append(mem.get("rss", 0))
        _last, pending = buffer_state(db)
        print(
            f"drain t={time.monotonic() - t1:6.0f}s left={len(pending)} messages={checker.messages}"
            f" rss={mem.get('rss', 0):6.1f} MB",
            flush=True,
        )
        if len(pending) <= 5:
            drained_at = time.monotonic()
            break
    rc = agent.terminate(timeout=60)
    last, pending = buffer_state(db)
    seen, deadline = -1, time.monotonic() + 300
    while checker.messages != seen and time.monotonic() < deadline:  # the subscriber's last messages
        seen = checker.messages
        time.sleep(5)
    checker.client.loop_stop()
    broker.stop()
    rep = checker.report(last, pending)
    drain_s = (drained_at or time.monotonic()) - t1
    consumer_s = (checker.last_at or t1) - t1
    figures = {
        "devices": args.devices,
        "hours_requested": args.hours,
        "hours_simulated": round((state.get("sim_s") or 0) / 3600, 2),
        "records_produced": state.get("emitted"),
        "ingest_wall_s": round(ingest_s),
        "ingest_rate_per_s": round((state.get("emitted") or 0) / max(1.0, ingest_s)),
        "buffer_after_outage": before,
        "drain_s_agent": round(drain_s, 1),
        "drain_s_consumer_last_message": round(consumer_s, 1),
        "drain_rate_per_s": round(rep["delivered_distinct"] / max(1.0, consumer_s)),
        "rss_mb_max_outage": max(rss_ingest, default=0),
        "rss_mb_max_drain": max(rss_drain, default=0),
        "rss_mb_end_of_drain": rss_drain[-1] if rss_drain else None,
        "agent_exit": rc,
        "stream": rep,
    }
    print(json.dumps(figures, indent=1))
    ok = rc == 0 and not (
        rep["lost"] or rep["bad_hashes"] or rep["broken_links"] or rep["range_link_problems"] or rep["out_of_order"]
    )
    print("RESULT", "OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
