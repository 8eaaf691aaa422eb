"""Start-up at scale: ``headframe run`` exec'd with N Modbus TCP devices → first datapoint at a
real subscriber, and the RSS of the agent.

    .venv/bin/python -m bench.startup_bench [--devices 100] [--runs 3] [--dead 0] [--compare /work/main]

Devices: ``bench.modbus_farm``, one process serving one TCP port per device (unit 1, 100
registers each, listed as 100 points per device in the config, values changing on every
request). Broker: a real mosquitto; subscriber: paho, QoS 1, persistent session.

Each run starts the agent twice on the same state directory: ``cold`` (first start: new buffer,
no continuity state) and ``warm`` (a restart, the common case after a reboot). Measured from just
before ``exec`` to the arrival at the subscriber of the first telemetry record with values, and
of every device's first record; the agent's CPU seconds at that moment (user + system, all its
threads: load on a shared machine stretches wall time, not CPU); RSS 10 s after exec and VmHWM
(peak since exec). ``--compare REPO`` runs another checkout (e.g. main) the same way,
alternating with this one, in the same process, against the same farm and broker.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sitefarm import REPO, Farm, TelemetryCounter, agent_config, cpu_s, rss_mb, wait_until
from tests.support.broker import MosquittoBroker


def blackholed_port() -> tuple[socket.socket, list[socket.socket], int]:
    """A port whose accept queue is full: the kernel drops further SYNs, a connect hangs
    until the client's timeout, like a device behind a dead switch."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    return lst, fillers, port


def start_once(repo: Path, cfg: Path, counter: TelemetryCounter, devices: int, settle: float, cold: bool) -> dict[str, float]:
    with counter.lock:
        counter.first_at, counter.first_by_source = None, {}
        if cold:  # a new buffer numbers from seq 1 again: earlier runs' seqs are not redeliveries
            counter.seqs.clear()
    env = {"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}
    with open(cfg.with_suffix(".log"), "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], cwd=repo, env=env, stdout=log, stderr=log
        )
        try:
            wait_until("first datapoint", lambda: counter.first_at is not None, 120)
            cpu_first = cpu_s(proc.pid)
            assert counter.first_at is not None
            first = counter.first_at - t0
            wait_until("every device's first datapoint", lambda: len(counter.first_by_source) >= devices, 120)
            all_first = max(counter.first_by_source.values()) - t0
            time.sleep(max(0.0, settle - (time.monotonic() - t0)))
            rss, peak = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"first": first, "all": all_first, "cpu": cpu_first, "rss": rss, "peak": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--dead", type=int, default=0, help="extra devices on blackholed ports")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after exec at which RSS is read")
    ap.add_argument("--compare", type=Path, help="another checkout to run the same way (e.g. /work/main)")
    args = ap.parse_args()
    repos = {"this": REPO} | ({"other": args.compare.resolve()} if args.compare else {})
    tmp = Path(tempfile.mkdtemp(prefix="hf-startup-"))
    farm = Farm(args.devices)
    holes = [blackholed_port() for _ in range(args.dead)]
    broker = MosquittoBroker(tmp / "broker").start()
    counter = TelemetryCounter(broker)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for run in range(args.runs):
            for name, repo in repos.items():
                state = tmp / f"{name}-{run}"
                state.mkdir()
                cfg = agent_config(state / "agent.json", farm.ports + [h[2] for h in holes], broker.port, state / "buf.db")
                for phase in ("cold", "warm"):
                    r = start_once(repo, cfg, counter, args.devices, args.settle, phase == "cold")
                    results.setdefault((name, phase), []).append(r)
                    print(
                        f"run {run + 1} {name} ({repo}) {phase}: first datapoint {r['first']:.2f} s "
                        f"(agent CPU {r['cpu']:.2f} s), every device {r['all']:.2f} s, RSS {r['rss']:.0f} MB "
                        f"at {args.settle:.0f} s, peak {r['peak']:.0f} MB",
                        flush=True,
                    )
    finally:
        counter.stop()
        broker.stop()
        farm.stop()
        for lst, fillers, _ in holes:
            for s in fillers:
                s.close()
            lst.close()
    print(f"{args.devices} Modbus TCP devices x 100 points (+{args.dead} blackholed), {args.runs} runs, min / median:")
    for (name, phase), rs in results.items():

        def mm(key: str, rs: list[dict[str, float]] = rs) -> str:
            return f"{min(r[key] for r in rs):.2f} / {statistics.median(r[key] for r in rs):.2f}"

        print(
            f"  {name:5} {phase}: first datapoint {mm('first')} s [target <= 2 s]; agent CPU until then {mm('cpu')} s; "
            f"every device {mm('all')} s; RSS {mm('rss')} MB; peak {mm('peak')} MB"
        )


if __name__ == "__main__":
    main()
