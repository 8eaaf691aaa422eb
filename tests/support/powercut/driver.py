"""The workload a power cut interrupts: the real ``BufferStore``, driven the way the agent drives it.

Telemetry and health (and now and then an event) are gathered and committed every 50 ms as
one batch, like the agent's writer loop; alarms are appended on their own at once (the
mains-lost alarm path); an uplink stand-in leases and acks most of what was committed.
Every fact the harness checks is reported on stdout, one JSON line each, *after* the store
call returned (commits) or *before* it starts (acks, which may delete records):

    {"open": last_seq, "head": chain_head, "clean": bool}
    {"c": [[seq, kind, chain, prev], ...], "t": wall time, "sync": "power_loss|process_crash"}
    {"a": [seq, ...]}
    {"closed": true}

With ``--rules`` the store runs the rules engine with the test ``CountingRule`` (every 50):
its ``counted`` events and saved count commit with the telemetry, and are reported with them.

Run: python -m tests.support.powercut.driver DB --seed N --duration S --durability JSON [--boot-id ID] [--quiet-site]
     [--rules]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from buffer.record import Kind, Record
from buffer.store import BufferStore

KEY = b"powercut-test-key"
GATEWAY, SITE = "gw-pc", "site-pc"


def say(obj: dict[str, Any]) -> None:
    os.write(1, orjson.dumps(obj) + b"\n")


def report_commit(
    store: BufferStore, seqs: list[int], durability: dict[Kind, str], kinds: set[Kind], sync: str | None = None
) -> None:
    if not seqs:
        return
    rows = store.db.execute("SELECT body FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq", (seqs[0], seqs[-1])).fetchall()
    out = []
    for (body,) in rows:
        doc = orjson.loads(body)
        out.append([doc["seq"], doc["kind"], doc["chain"], doc["prev"]])
    sync = sync or ("power_loss" if any(durability[k] == "power_loss" for k in kinds) else "process_crash")
    say({"c": out, "t": time.time(), "sync": sync})


def committing(store: BufferStore, durability: dict[Kind, str]) -> Callable[[list[Record]], None]:
    """Commit and report the batch with what the rules derived in its transaction (the store
    makes a derived power_loss record durable before returning, so it is reported as such)."""

    def append(batch: list[Record]) -> None:
        committed = store.commit(batch)
        report_commit(store, [c.seq for c in committed], durability, {c.record.kind for c in committed})

    return append


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--durability", default="{}")
    ap.add_argument("--boot-id", default=None)
    ap.add_argument("--quiet-site", action="store_true", help="telemetry and health only: no FULL commits")
    ap.add_argument("--max-unsynced", type=float, default=None, help="BufferStore max_unsynced_s (default: its own)")
    ap.add_argument("--rules", action="store_true", help="run the rules engine with the test counting rule")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    durability = {Kind(k): v for k, v in json.loads(args.durability).items()}
    extra: dict[str, Any] = {"boot_id": args.boot_id} if args.boot_id else {}
    if args.max_unsynced is not None:
        extra["max_unsynced_s"] = args.max_unsynced
    if args.rules:
        from rules.engine import RulesEngine
        from tests.rules.counting_rule import CountingRule

        extra["processor"] = RulesEngine([CountingRule(every=50)])
    # no disk reserve: the write model follows the database's files (write, truncate, rename), not
    # posix_fallocate of a file that holds no data (the reserve is tested on a real full tmpfs)
    store = BufferStore(args.db, gateway=GATEWAY, site=SITE, chain_key=KEY, durability=durability, reserve_bytes=0, **extra)
    append = committing(store, durability) if args.rules else None
    durability = store.durability
    say({"open": store.last_seq, "head": store.chain_head, "clean": store.previous_shutdown_clean})
    # a seq skip after a power cut is explained by a records_dropped event the store commits (FULL) at open
    report_commit(store, [c.seq for c in store.pop_side_commits()], durability, {Kind.EVENT}, sync="power_loss")
    rate = rng.choice((5, 20, 60))  # telemetry records per 50 ms tick: a quiet to a busy site
    n = 0
    end = time.monotonic() + args.duration
    tick = 0
    while time.monotonic() < end:
        tick += 1
        batch = [
            Record(f"meter-{i % 7}", Kind.TELEMETRY, {"n": n + i, "values": {"p": {"v": rng.random(), "unit": "kW"}}})
            for i in range(rng.randint(1, rate))
        ]
        n += len(batch)
        if rng.random() < 0.05:
            batch.append(Record("agent", Kind.HEALTH, {"uptime": tick, "pad": "h" * rng.randint(50, 800)}))
        if rng.random() < 0.03 and not args.quiet_site:
            batch.append(Record("agent", Kind.EVENT, {"event": "door", "n": tick}))
        if append is not None:
            append(batch)
        else:
            seqs = store.append(batch)
            report_commit(store, seqs, durability, {r.kind for r in batch})
        if rng.random() < 0.06 and not args.quiet_site:  # an alarm committed at once, alone (the mains-lost path)
            alarm = Record("ups", Kind.ALARM, {"alarm": "mains_lost", "state": "raised", "n": tick})
            if append is not None:
                append([alarm])
            else:
                report_commit(store, store.append([alarm]), durability, {Kind.ALARM})
        if tick % 4 == 0:  # the uplink: lease, "deliver", ack most of it
            leased = store.lease(rng.randint(10, 400))
            acked = [r.seq for r in leased if rng.random() < 0.9]
            if acked:
                say({"a": acked})
                store.ack(acked)
            if rng.random() < 0.1:
                store.release_all()
        time.sleep(0.05)
    store.close(clean=True)
    say({"closed": True})


if __name__ == "__main__":
    main()
