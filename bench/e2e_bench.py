"""Drivers end to end: ``headframe run`` polling N Modbus TCP devices x R registers at 1 Hz,
through the real buffer and uplink to a real mosquitto, a subscriber counting what arrives.

    .venv/bin/python -m bench.e2e_bench [--devices 100] [--registers 100] [--seconds 30] [--outage 0]

Devices: ``bench.modbus_farm`` (one process, one TCP port per device, every register changes
on every request, so report-on-change reports every point of every poll). The agent is exec'd
as systemd would; its CPU (user + system, all threads) and RSS are read from /proc over a
window that starts once every device has delivered. The subscriber (paho, QoS 1, persistent
session) counts datapoints (point values in telemetry records) and every record's seq.

``--outage S`` then stops the broker for S seconds, starts it again, waits for the backlog to
drain and reports records lost (seqs never received between the first and the last one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sitefarm import REPO, Farm, TelemetryCounter, agent_config, cpu_s, rss_mb, wait_until, written_bytes
from tests.support.broker import MosquittoBroker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--registers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose agent runs (e.g. /work/main for a before)")
    ap.add_argument("--outage", type=float, default=0, help="broker outage in seconds after the window (0: none)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hf-e2e-"))
    farm = Farm(args.devices, args.registers)
    broker = MosquittoBroker(tmp / "broker").start()
    counter = TelemetryCounter(broker)
    cfg = agent_config(tmp / "agent.json", farm.ports, broker.port, tmp / "buf.db", registers=args.registers)
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115
    env = {"PYTHONPATH": str(args.repo.resolve()), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)]
    proc = subprocess.Popen(cmd, cwd=args.repo, env=env, stdout=log, stderr=log)
    expected = args.devices * args.registers
    try:
        wait_until("every device delivered", lambda: len(counter.first_by_source) >= args.devices, 120, 0.1)
        time.sleep(3)  # settle
        c0, d0, r0, t0 = cpu_s(proc.pid), counter.datapoints, farm.requests, time.monotonic()
        w0 = written_bytes(proc.pid)
        time.sleep(args.seconds)
        c1, d1, r1, t1 = cpu_s(proc.pid), counter.datapoints, farm.requests, time.monotonic()
        w1 = written_bytes(proc.pid)
        rss, peak = rss_mb(proc.pid)
        wall = t1 - t0
        cpu, dps = (c1 - c0) / wall, (d1 - d0) / wall
        print(
            f"agent from {args.repo}: {args.devices} devices x {args.registers} registers at 1 Hz, "
            f"every register changing, end to end (farm -> agent -> buffer -> mosquitto -> subscriber), {wall:.0f} s window:\n"
            f"  delivered {dps:,.0f} datapoints/s of {expected:,} polled per second ({dps / expected:.1%}); "
            f"farm answered {(r1 - r0) / wall:,.0f} requests/s\n"
            f"  agent CPU {cpu * 100:.1f} % of one core = {cpu / dps * 1000 if dps else float('nan'):.4f} CPU s per "
            f"1000 datapoints; RSS {rss:.0f} MB (peak {peak:.0f} MB); written {(w1 - w0) / wall / 1e6:.2f} MB/s",
            flush=True,
        )
        if args.outage:
            before = counter.missing()
            broker.stop()
            down_at = time.monotonic()
            time.sleep(args.outage)
            broker.start()
            polled_during = args.outage * expected
            wait_until(
                "backlog drained",
                lambda: counter.missing() == 0 and counter.datapoints - d1 >= polled_during,
                args.outage * 5 + 60,
                0.5,
            )
            drained = time.monotonic() - down_at - args.outage
            rss2, peak2 = rss_mb(proc.pid)
            print(
                f"  broker outage {args.outage:.0f} s: records lost {counter.missing() - before} (seqs never received); "
                f"backlog delivered {drained:.1f} s after the broker came back; RSS {rss2:.0f} MB (peak {peak2:.0f} MB)"
            )
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        counter.stop()
        broker.stop()
        farm.stop()


if __name__ == "__main__":
    main()
