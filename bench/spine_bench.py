"""Data spine benchmarks: ingest, drain to mosquitto, 1M backlog, idle RSS, start-up time.

Every figure is printed next to a baseline measured in the same run on the same machine:
    .venv/bin/python -m bench.spine_bench [--records 200000] [--backlog 1000000]
    .venv/bin/python -m bench.spine_bench --rules-only   # ingest with 3 trivial rules vs none
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from agent.uplink import JsonFormatter, Topics
from buffer import BufferStore, Committed, Kind, Record
from buffer.store import SCHEMA
from config import Settings, load_settings_text
from rules.engine import RulesEngine
from tests.support.agentproc import write_config
from tests.support.broker import Collector, MosquittoBroker


def records(n: int) -> list[Record]:
    # ~1000 records per second of observation time, like a busy gateway
    return [
        Record(
            f"meter-{i % 20}", Kind.TELEMETRY, {"values": {"p": {"v": i * 0.5, "unit": "kW", "q": "good"}}}, ts=1.7e9 + i * 0.001
        )
        for i in range(n)
    ]


def bench_ingest(n: int, batch: int = 1000) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    recs = records(n)
    store = BufferStore(tmp / "a.db", gateway="gw", site="s", max_bytes=10 * 1024**3)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        store.append(recs[i : i + batch])
    ours = n / (time.perf_counter() - t0)
    rows = store.db.execute("SELECT seq, prio, source, created, size, n_att, body, ts FROM records").fetchall()
    store.close()
    raw = sqlite3.connect(tmp / "raw.db")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.executescript(SCHEMA)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        raw.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i : i + batch])
        raw.commit()
    base = n / (time.perf_counter() - t0)
    return {"ours_rps": ours, "raw_executemany_rps": base, "ratio": ours / base}


class _Trivial:
    """A trivial rule for the engine's cost: looks at every record, keeps a little state."""

    def __init__(self, name: str, look: str) -> None:
        self.name, self.look = name, look
        self.state: dict[str, float] = {}

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        state, look = self.state, self.look
        for c in batch:
            if c.record.kind is Kind.TELEMETRY:
                v = c.record.payload["values"].get(look)
                if v is not None and v["q"] == "good":
                    state[c.record.source] = v["v"]
        return []

    def tick(self, now: float) -> list[Record]:
        return []

    def snapshot(self) -> dict[str, float]:
        return dict(self.state)

    def restore(self, snapshot: dict[str, float]) -> None:
        self.state = dict(snapshot)


def _ingest_store(store: BufferStore, recs: list[Record], batch: int) -> tuple[float, float]:
    """(records per wall second, records per CPU second of this thread)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    for i in range(0, len(recs), batch):
        store.append(recs[i : i + batch])
    rates = len(recs) / (time.perf_counter() - t0), len(recs) / (time.thread_time() - c0)
    store.close()
    return rates


def bench_rules_ingest(n: int, batch: int = 1000, repeats: int = 3) -> dict[str, float]:
    """Store ingest with an engine of 3 trivial rules attached vs none, alternating runs in one
    process (best of ``repeats`` each, to damp the noise of a shared machine)."""
    tmp = Path(tempfile.mkdtemp())
    recs = records(n)
    none: list[tuple[float, float]] = []
    rules: list[tuple[float, float]] = []
    for r in range(repeats):
        none.append(_ingest_store(BufferStore(tmp / f"n{r}.db", gateway="gw", site="s", max_bytes=10 * 1024**3), recs, batch))
        engine = RulesEngine([_Trivial("last_p", "p"), _Trivial("last_q", "q"), _Trivial("last_e", "e")])
        rules.append(
            _ingest_store(
                BufferStore(tmp / f"r{r}.db", gateway="gw", site="s", max_bytes=10 * 1024**3, processor=engine), recs, batch
            )
        )
    wall_none, wall_rules = max(w for w, _ in none), max(w for w, _ in rules)
    cpu_none, cpu_rules = max(c for _, c in none), max(c for _, c in rules)
    return {
        "none_rps": wall_none,
        "rules_rps": wall_rules,
        "ratio": wall_rules / wall_none,
        "none_cpu_rps": cpu_none,
        "rules_cpu_rps": cpu_rules,
        "cpu_ratio": cpu_rules / cpu_none,
    }


def _settings(tmp: Path, port: int, inflight: int = 1000) -> Settings:
    text = json.dumps(
        {
            "gateway": {"site": "s", "id": "gw"},
            "buffer": {"path": str(tmp / "d.db"), "max_bytes": "20GiB"},
            "uplink": {"host": "127.0.0.1", "port": port, "inflight": inflight},
        }
    )
    return load_settings_text(text)


def bench_drain(n: int) -> dict[str, float]:
    """One run of ``bench.drain_bench``: the uplink draining n committed records vs the best bare
    paho publisher (same topics, bodies, QoS 1 and window; a subscriber attached to both)."""
    from bench.drain_bench import Subscriber, _ours, bare

    tmp = Path(tempfile.mkdtemp())
    broker = MosquittoBroker(tmp / "b").start()
    try:
        settings = _settings(tmp, broker.port)
        ours = asyncio.run(_ours(settings, n, Subscriber(broker.port, n, 0)))
        store = BufferStore(tmp / "bodies.db", gateway="gw", site="s", max_bytes=10 * 1024**3)
        store.append(records(n))
        fmt = JsonFormatter(Topics(settings))
        messages = [fmt.format(r) for r in store.lease(n)]
        store.close()
        base = bare(broker.port, messages, 1000, Subscriber(broker.port, n, 1))
    finally:
        broker.stop()
    return {
        "records": n,
        "ours_s": ours["delivered_s"],
        "ours_mps": n / ours["delivered_s"],
        "bare_paho_mps": n / base["delivered_s"],
        "ratio": base["delivered_s"] / ours["delivered_s"],
    }


def bench_process(tmp: Path) -> dict[str, float]:
    """Spawn ``headframe run`` like systemd does; time to first health record and idle RSS."""
    broker = MosquittoBroker(tmp / "pb").start()
    collector = Collector(broker, topics=["headframe/+/+/health/#"]).start()
    cfg = write_config(tmp / "c.yaml", broker.port, buffer_path=tmp / "p.db", health_interval="30s")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], stderr=subprocess.DEVNULL)
    collector.wait_for(lambda ms: len(ms) > 0, timeout=30)
    first_health = time.monotonic() - t0
    time.sleep(5)
    rss = psutil.Process(proc.pid).memory_info().rss
    t0 = time.monotonic()
    bare = subprocess.run([sys.executable, "-c", "import paho.mqtt.client, sqlite3, pydantic"], check=True)
    bare_import = time.monotonic() - t0
    proc.terminate()
    proc.wait(10)
    collector.stop()
    broker.stop()
    return {
        "start_to_first_health_s": first_health,
        "bare_python_import_s": bare_import,
        "idle_rss_mb": rss / 1e6,
        "returncode": bare.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--drain", type=int, default=100_000)
    ap.add_argument("--backlog", type=int, default=1_000_000)
    ap.add_argument("--rules-only", action="store_true", help="only the ingest with / without the rules engine")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    rules = bench_rules_ingest(args.records)
    print(
        f"ingest with the rules engine (3 trivial rules): {rules['rules_rps']:,.0f} rec/s vs no engine "
        f"{rules['none_rps']:,.0f} rec/s (best of 3 each, alternating) -> ratio {rules['ratio']:.2f}; per CPU "
        f"second {rules['rules_cpu_rps']:,.0f} vs {rules['none_cpu_rps']:,.0f} -> ratio {rules['cpu_ratio']:.2f}"
    )
    if args.rules_only:
        return
    ingest = bench_ingest(args.records)
    print(
        f"ingest: {ingest['ours_rps']:,.0f} rec/s (batched 1000) vs raw sqlite3 executemany "
        f"{ingest['raw_executemany_rps']:,.0f} rec/s -> ratio {ingest['ratio']:.2f}  [target >= 50k/s and >= 0.5x]"
    )
    drain = bench_drain(args.drain)
    print(
        f"drain to mosquitto QoS1 (subscriber attached): {drain['ours_mps']:,.0f} msg/s vs best bare paho publisher "
        f"{drain['bare_paho_mps']:,.0f} msg/s "
        f"-> ratio {drain['ratio']:.2f}  [target >= 10k/s and >= 0.7x]"
    )
    if args.backlog:
        big = bench_drain(args.backlog)
        print(
            f"backlog of {args.backlog:,} drained in {big['ours_s']:.1f} s ({big['ours_mps']:,.0f} msg/s; bare paho "
            f"{big['bare_paho_mps']:,.0f} msg/s, ratio {big['ratio']:.2f})  [target < 100 s]"
        )
    proc = bench_process(Path(tempfile.mkdtemp()))
    print(
        f"start to first health record: {proc['start_to_first_health_s']:.2f} s (bare interpreter + imports of "
        f"paho/sqlite3/pydantic: {proc['bare_python_import_s']:.2f} s)  [target < 1.5 s]"
    )
    print(f"idle RSS: {proc['idle_rss_mb']:.1f} MB  [target <= 80 MB]")


if __name__ == "__main__":
    main()
