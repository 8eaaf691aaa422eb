"""``python -m hil site|watch|run``: the simulated site, a live view, and fault scenarios."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from config import ConfigError


def cmd_site(args: argparse.Namespace) -> int:
    from hil.lifetime import end, received, spawn, stop_on_signals
    from hil.site import Site
    from hil.watch import BrokerLink, watch

    # before anything starts: SIGTERM/SIGHUP/SIGINT reach the finally below, which stops it all
    stop_on_signals()
    work = Path(args.workdir).resolve()
    site = Site(work)
    agent = None
    try:
        site.start()
        cfg = site.config(work / "headframe.yaml", work / "buffer.db")
        print(
            f"simulated site up: broker 127.0.0.1:{site.broker_port}, PLC 127.0.0.1:{site.plc_port}, "
            f"RS-485 {site.rtu_agent_end}, DL/T 645 {site.dlt_agent_end}, cameras {site.cameras.url('shaft')}"
        )
        print(f"config: {cfg}", flush=True)
        if args.agent:
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            with open(work / "agent.log", "ab") as log:
                argv = [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)]
                agent = spawn(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            print(f"agent started (pid {agent.pid}, log {work / 'agent.log'})", flush=True)
        if args.watch:
            watch(BrokerLink("127.0.0.1", site.broker_port), args.duration)
        elif args.duration is None:
            while True:
                signal.pause()
        else:
            time.sleep(args.duration)
    except KeyboardInterrupt:  # Ctrl-C, or a stop signal (hil.lifetime.StopSignal)
        pass
    finally:
        print(f"stopping the simulated site ({', '.join(received) or 'done'})", flush=True)
        end(agent, timeout=20)  # the agent first: it records a clean stop while the broker is up
        site.stop()
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from hil.watch import BrokerLink, watch

    if args.config:
        try:
            link = BrokerLink.from_config(Path(args.config))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        except (OSError, ValueError) as exc:  # the password file vanished or is not text since the check
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        host, _, port = args.broker.partition(":")
        link = BrokerLink(host, int(port or 1883))
    return watch(link, args.duration)


def _print_result(result: dict[str, Any]) -> None:
    for name, check in result["checks"].items():
        print(f"  [{'PASS' if check['ok'] else 'FAIL'}] {name}: {check['detail']}")
    print(f"  => {result['scenario']} {'PASSED' if result['passed'] else 'FAILED'} in {result['seconds']} s", flush=True)


def _run_one(sc: Any, scale: float, base: str | None) -> dict[str, Any]:
    from hil.runner import ScenarioRun

    work = Path(tempfile.mkdtemp(prefix=f"hil-{sc.name}-", dir=base))
    result = ScenarioRun(sc, work, scale).run()
    result["workdir"] = str(work)
    return result


def _run_parallel(paths: list[str], names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each scenario in its own ``python -m hil run`` process (its own site, ports, dirs and
    GIL), at most ``--jobs`` at a time; a process that dies still yields a failed result.
    Each is started by ``spawn`` (it gets SIGTERM if this process dies); when this one is
    stopped (``stop_on_signals``), the runs still going get SIGTERM and their own cleanup."""
    from hil.lifetime import end

    tmp = Path(tempfile.mkdtemp(prefix="hil-jobs-", dir=args.workdir))
    pending = list(zip(paths, names, strict=True))
    running: dict[subprocess.Popen[bytes], tuple[str, Path, Path, float]] = {}
    results: list[dict[str, Any]] = []
    try:
        _run_jobs(pending, running, results, tmp, args)
    finally:
        # only after a stop signal or an error (a normal end has none left): SIGTERM them all
        # at once, then wait for each; a run's finally stops its agent (20 s), site and tmpfs
        for proc in running:
            with contextlib.suppress(OSError):
                proc.terminate()
        for proc in running:
            end(proc, timeout=60)
    return results


def _run_jobs(
    pending: list[tuple[str, str]],
    running: dict[subprocess.Popen[bytes], tuple[str, Path, Path, float]],
    results: list[dict[str, Any]],
    tmp: Path,
    args: argparse.Namespace,
) -> None:
    from hil.lifetime import spawn

    while pending or running:
        while pending and len(running) < args.jobs:
            path, name = pending.pop(0)
            out, log = tmp / f"{name}.json", tmp / f"{name}.log"
            with open(log, "wb") as fh:
                cmd = [
                    sys.executable,
                    "-m",
                    "hil",
                    "run",
                    str(Path(path).resolve()),
                    "--scale",
                    str(args.scale),
                    "--json",
                    str(out),
                    "--workdir",
                    str(tmp),
                ]
                proc = spawn(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
            running[proc] = (name, out, log, time.monotonic())
            print(f"=== {name} started", flush=True)
        time.sleep(0.2)
        for proc in [p for p in running if p.poll() is not None]:
            name, out, log, t0 = running.pop(proc)
            try:
                found = json.loads(out.read_text())
            except (OSError, ValueError):
                tail = log.read_text(errors="replace")[-2000:]
                found = [
                    {
                        "scenario": name,
                        "passed": False,
                        "seconds": round(time.monotonic() - t0, 1),
                        "checks": {"runner": {"ok": False, "detail": f"exited {proc.returncode} without a report: {tail}"}},
                    }
                ]
            for result in found:
                result["log"] = str(log)
                _print_result(result)
            results.extend(found)


def cmd_run(args: argparse.Namespace) -> int:
    from hil.lifetime import stop_on_signals
    from hil.scenario import load_scenario

    stop_on_signals()  # a scenario's finally stops its site and agent on SIGTERM/SIGHUP too

    scenarios = []
    for path in args.scenarios:
        try:
            scenarios.append(load_scenario(Path(path)))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    started = time.monotonic()
    if args.jobs > 1 and len(scenarios) > 1:
        results = _run_parallel(args.scenarios, [sc.name for sc in scenarios], args)
    else:
        results = []
        for sc in scenarios:
            print(f"=== {sc.name}: {sc.description}", flush=True)
            result = _run_one(sc, args.scale, args.workdir)
            results.append(result)
            _print_result(result)
    out = Path(args.json or "hil-report.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"{len(results)} scenario(s) in {time.monotonic() - started:.1f} s; report: {out}")
    return 0 if all(r["passed"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hil")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("site", help="start the simulated site (and the agent, and the live view)")
    p.add_argument("--workdir", default="var/site")
    p.add_argument("--agent", action="store_true", help="also run headframe against it")
    p.add_argument("--watch", action="store_true", help="show records flowing")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=cmd_site)
    p = sub.add_parser("watch", help="live view of a broker")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--broker", default="127.0.0.1:1883", help="HOST[:PORT], anonymous plain TCP (a local broker)")
    how.add_argument("--config", help="a Headframe config: its broker, TLS, username and password file")
    p.add_argument("--duration", type=float)
    p.set_defaults(func=cmd_watch)
    p = sub.add_parser("run", help="run fault scenarios and report")
    p.add_argument("scenarios", nargs="+")
    p.add_argument("--scale", type=float, default=1.0, help="multiply wait times (soak runs: 10)")
    p.add_argument("--json", help="where to write the JSON report (default hil-report.json)")
    p.add_argument("--jobs", type=int, default=1, help="run this many scenarios at once, each in its own process")
    p.add_argument("--workdir", help="where each run gets its directory (default: the system's temporary directory)")
    p.set_defaults(func=cmd_run)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
