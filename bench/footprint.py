"""Headframe alone: CPU and memory of the real agent at 0, 10 and 100 simulated devices.

    .venv/bin/python -m bench.footprint [--devices 0,10,100] [--registers 100] [--seconds 60]

A faster loop than ``bench.tb_side_by_side`` for working on the agent's own footprint: the same
agent config (``bench.sitefarm.agent_config``: N Modbus TCP devices x R ``uint16`` registers
changing on every poll, 1 s, real buffer, real mosquitto and a QoS 1 subscriber), measured from
outside over ``--seconds`` of steady state. Printed per run: CPU % of one core, CPU s per 1000
datapoints, RSS, and the RSS split from ``/proc/PID/smaps_rollup`` (anonymous = heap and stacks,
file = mapped code and libraries) plus the thread count.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sitefarm import REPO, Farm, TelemetryCounter, agent_config, cpu_s, wait_until
from tests.support.broker import MosquittoBroker


def smaps(pid: int) -> dict[str, float]:
    """RSS, anonymous and file-backed resident memory (MB) and the thread count."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Anonymous", "Pss_File"):
            out[key] = int(rest.split()[0]) / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    return out


def run(devices: int, registers: int, seconds: float) -> dict[str, float]:
    """One agent with ``devices`` simulated devices; figures over ``seconds`` of steady state."""
    tmp = Path(tempfile.mkdtemp(prefix="hf-foot-"))
    farm = Farm(devices, registers) if devices else None
    broker = MosquittoBroker(tmp / "broker").start()
    counter = TelemetryCounter(broker, client_id="foot-counter")
    cfg = agent_config(tmp / "agent.json", farm.ports if farm else [], broker.port, tmp / "buf.db", registers=registers)
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        if devices:
            wait_until("every device delivered", lambda: len(counter.first_by_source) >= devices, 120, 0.2)
        time.sleep(10)
        c0, d0, t0 = cpu_s(proc.pid), counter.datapoints, time.monotonic()
        time.sleep(seconds)
        c1, d1, t1 = cpu_s(proc.pid), counter.datapoints, time.monotonic()
        mem = smaps(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        counter.stop()
        broker.stop()
        if farm:
            farm.stop()
    return {
        "cpu_pct": (c1 - c0) / (t1 - t0) * 100,
        "dps": (d1 - d0) / (t1 - t0),
        "cpu_per_1000": (c1 - c0) / max(1, d1 - d0) * 1000,
        **mem,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default="0,10,100", help="comma-separated device counts")
    ap.add_argument("--registers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    for n in (int(x) for x in args.devices.split(",")):
        r = run(n, args.registers, args.seconds)
        print(
            f"{n:>3} devices: {r['dps']:,.0f} datapoints/s; CPU {r['cpu_pct']:.2f} % of one core"
            + (f" = {r['cpu_per_1000']:.4f} s per 1000 datapoints" if n else "")
            + f"; RSS {r['Rss']:.1f} MB (anonymous {r['Anonymous']:.1f}, file {r['Pss_File']:.1f} PSS); "
            f"threads {r['threads']:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
