"""Broker flapping soak: the real agent under a steady record rate while mosquitto stops and starts.

    .venv/bin/python -m bench.flap_soak --minutes 10 --period 5 [--rate 200] [--baseline-minutes 2]

First ``--baseline-minutes`` with the broker up (the same load without flapping: the baseline),
then ``--minutes`` of cycles of ``--period`` s down / ``--period`` s up. The agent's memory is read
from /proc (RSS, anonymous vs file-backed) at the end of every cycle; the slope in KB per cycle is
printed for both phases. At the end the agent drains and stops, and a subscriber that kept every
message says what was lost, duplicated or out of order (and ``agent.verify`` checks the chain).
Exit status 1 if anything was lost, conflicting, out of order, or the chain does not verify.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.soaklib import memory, slope_kb_per_cycle
from tests.spine.helpers import chain_key
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import MosquittoBroker
from tests.support.seqcheck import SeqSubscriber, buffer_state, check_stream


def sample(agent: AgentProcess, label: str, t0: float, sub: SeqSubscriber) -> dict[str, float]:
    mem = memory(agent.proc.pid)
    line = (
        f"{label:>10} t={time.monotonic() - t0:7.1f}s rss={mem.get('rss', 0):7.2f} MB"
        f" anon={mem.get('anonymous', 0):7.2f} file={mem.get('file', 0):6.2f} threads={mem.get('threads', 0):.0f}"
        f" delivered={sub.count()}"
    )
    print(line, flush=True)
    return mem


def restart(broker: MosquittoBroker, attempts: int = 10) -> None:
    """Start the broker again on its port; on a shared machine another process may hold the port
    for a moment (mosquitto then says "Address already in use"): retry for a while."""
    for attempt in range(attempts):
        try:
            broker.start()
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of flapping")
    ap.add_argument("--period", type=float, default=5.0, help="seconds down, then seconds up, per cycle")
    ap.add_argument("--baseline-minutes", type=float, default=2.0, help="minutes without flapping first")
    ap.add_argument("--rate", type=float, default=200.0, help="records/s from the load generator in the agent")
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--reconnect-min", default="0.5s")
    ap.add_argument("--reconnect-max", default="2s")
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the agent (e.g. MALLOC_ARENA_MAX=2)")
    ap.add_argument("--keep", type=Path, help="keep the work directory here (logs, database)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="flap-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(work / "broker").start()
    # a gateway id of its own: during a down phase another job may start a broker on the freed
    # port, and its agent (tests use test-site/gw-test) must not pass as this one's stream
    gateway = f"soak-{os.getpid()}"
    sub = SeqSubscriber(broker, root=f"headframe/test-site/{gateway}/").start()
    db = work / "buf.db"
    cfg = write_config(
        work / "agent.yaml",
        broker.port,
        buffer_path=db,
        extra={"gateway": {"id": gateway}},
        health_interval="5s",
        reconnect_min=args.reconnect_min,
        reconnect_max=args.reconnect_max,
    )
    env = {
        "HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen",
        "LOADGEN_RATE": str(args.rate),
        "LOADGEN_SOURCES": str(args.sources),
    }
    env.update(dict(kv.split("=", 1) for kv in args.env))
    agent = AgentProcess(cfg, env=env, log=work / "agent.log")
    try:
        return run(args, work, broker, sub, agent, db)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
        broker.stop()


def run(args: argparse.Namespace, work: Path, broker: MosquittoBroker, sub: SeqSubscriber, agent: AgentProcess, db: Path) -> int:
    """The baseline, the flapping, the final drain and the check."""
    print(f"work dir {work}; agent pid {agent.proc.pid}; rate {args.rate}/s; env {args.env}", flush=True)
    t0 = time.monotonic()
    time.sleep(10)  # imports, schema, first session
    base: list[float] = []
    end = time.monotonic() + args.baseline_minutes * 60
    while time.monotonic() < end:
        time.sleep(2 * args.period)
        base.append(sample(agent, "steady", t0, sub)["rss"])
    flap: list[dict[str, float]] = []
    end = time.monotonic() + args.minutes * 60
    cycles = 0
    while time.monotonic() < end:
        broker.stop()
        time.sleep(args.period)
        restart(broker)
        time.sleep(args.period)
        cycles += 1
        flap.append(sample(agent, f"cycle {cycles}", t0, sub))
        if agent.proc.poll() is not None:
            print("agent died", flush=True)
            break
    # let the backlog of the last outage drain, then a clean stop
    time.sleep(max(10.0, 2 * args.period))
    final = sample(agent, "drained", t0, sub)
    rc = agent.terminate()
    last, pending = buffer_state(db)
    expected = set(range(1, last + 1)) - pending
    sub.wait_for(expected, 30)
    sub.stop()
    broker.stop()
    check = check_stream(sub, last, pending, chain_key(db))
    rss = [m["rss"] for m in flap]
    anon = [m["anonymous"] for m in flap]
    half = len(rss) // 2
    figures = {
        "flap_minutes": round(args.minutes, 2),
        "period_s": args.period,
        "cycles": cycles,
        "rate_per_s": args.rate,
        "agent_exit": rc,
        "rss_mb_start_of_flapping": rss[0] if rss else None,
        "rss_mb_end_of_flapping": rss[-1] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
        "rss_mb_after_drain": final.get("rss"),
        "steady_slope_kb_per_10s": round(slope_kb_per_cycle(base), 1),
        "flap_slope_kb_per_cycle": round(slope_kb_per_cycle(rss), 1),
        "flap_slope_kb_per_cycle_second_half": round(slope_kb_per_cycle(rss[half:]), 1),
        "anon_slope_kb_per_cycle": round(slope_kb_per_cycle(anon), 1),
        "stream": check.summary(),
    }
    print(json.dumps(figures, indent=1))
    ok = check.ok() and rc == 0
    print("RESULT", "OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
