"""What an OPC UA device costs the gateway, beside Modbus TCP doing the same work.

    .venv/bin/python -m bench.opcua_bench [--nodes 1000] [--seconds 20]

One server process holds an asyncua server with N Double variables and a pymodbus server
with N holding registers; every variable and register changes once a second. The gateway
side is the real drivers producer (``drivers.runtime.Drivers``: poller, driver, quality,
report-on-change) with a sink that only counts values, each mode in a fresh process so RSS
is its own: OPC UA subscribe (publishing interval 1 s), OPC UA poll (1 s) and the baseline,
Modbus TCP polled at 1 s (N/125 block reads). Reported: CPU seconds of the gateway process
per 1000 values delivered, values/s, RSS at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import subprocess
import sys
import time
from multiprocessing.synchronize import Event as EventType
from typing import Any

import psutil

from buffer.record import Kind, Record
from config import load_settings_text
from drivers.runtime import Drivers
from tests.support.broker import free_port


class CountingSink:
    """Counts telemetry values and keeps nothing (a list would grow RSS)."""

    def __init__(self) -> None:
        self.values = 0
        self.bad = 0

    def emit(self, record: Record) -> None:
        if record.kind is Kind.TELEMETRY:
            vals = record.payload["values"]
            self.values += len(vals)
            self.bad += sum(1 for v in vals.values() if v["q"] != "good")


def serve(opcua_port: int, modbus_port: int, nodes: int, ready: EventType) -> None:
    """The plant: both servers, every value changing once a second."""
    from asyncua import Server, ua

    from hil.sim.modbus_slaves import RegisterImage, ServerThread

    image = RegisterImage(size=max(nodes, 200))
    modbus = ServerThread({1: image}, tcp_port=modbus_port).start()

    async def run() -> None:
        server = Server()
        await server.init()
        server.disable_clock()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{opcua_port}/bench/")
        idx = await server.register_namespace("urn:headframe:bench")
        obj = await server.nodes.objects.add_object(ua.NodeId.from_string(f"ns={idx};s=Bench"), "Bench")
        variables = [await obj.add_variable(ua.NodeId.from_string(f"ns={idx};s=v{i}"), f"v{i}", 0.0) for i in range(nodes)]
        await server.start()
        ready.set()
        tick = 0
        while True:
            tick += 1
            for i, var in enumerate(variables):
                await var.write_value(float(tick * 1000 + i))
            image.set_registers("holding", 0, [(tick + i) & 0xFFFF for i in range(nodes)])
            await asyncio.sleep(1.0)

    try:
        asyncio.run(run())
    finally:
        modbus.stop()


def _config(mode: str, opcua_port: int, modbus_port: int, nodes: int) -> str:
    if mode == "modbus":
        points = ", ".join(f"{{name: r{i}, address: {i}, type: uint16}}" for i in range(nodes))
        dev = f"{{id: dev, protocol: modbus_tcp, host: 127.0.0.1, port: {modbus_port}, points: [{points}]}}"
    else:
        points = ", ".join(f"{{name: v{i}, node: 'ns=2;s=v{i}'}}" for i in range(nodes))
        dev = (
            f"{{id: dev, protocol: opcua, endpoint: 'opc.tcp://127.0.0.1:{opcua_port}/bench/', mode: {mode}, "
            f"publishing_interval: 1s, points: [{points}]}}"
        )
    return f"gateway: {{site: s, id: g}}\ndevices:\n  - {dev}\n"


async def _measure(mode: str, opcua_port: int, modbus_port: int, nodes: int, seconds: float) -> dict[str, Any]:
    sink = CountingSink()
    drivers = Drivers(load_settings_text(_config(mode, opcua_port, modbus_port, nodes)), sink)
    await drivers.start()
    await asyncio.sleep(3)  # connect, subscribe, first values
    proc = psutil.Process()
    c0, v0, t0 = proc.cpu_times(), sink.values, time.monotonic()
    await asyncio.sleep(seconds)
    c1, v1, t1 = proc.cpu_times(), sink.values, time.monotonic()
    rss = proc.memory_info().rss / 1e6
    await drivers.stop()
    cpu = c1.user + c1.system - c0.user - c0.system
    values = v1 - v0
    return {
        "mode": mode,
        "values_per_s": values / (t1 - t0),
        "cpu_core_pct": 100 * cpu / (t1 - t0),
        "cpu_s_per_1000": 1000 * cpu / values if values else float("nan"),
        "rss_mb": rss,
        "bad": sink.bad,
        "asyncua_loaded": "asyncua" in sys.modules,
    }


def child(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_measure(args.child, args.opcua_port, args.modbus_port, args.nodes, args.seconds))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--child", choices=["modbus", "subscribe", "poll"], help=argparse.SUPPRESS)
    ap.add_argument("--opcua-port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--modbus-port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    opcua_port, modbus_port = free_port(), free_port()
    ready = mp.Event()
    server = mp.Process(target=serve, args=(opcua_port, modbus_port, args.nodes, ready), daemon=True)
    server.start()
    if not ready.wait(120):
        server.kill()
        raise SystemExit("the servers did not start")
    results = []
    try:
        for mode in ("modbus", "subscribe", "poll", "modbus"):  # the baseline twice: before and after
            cmd = [sys.executable, "-m", "bench.opcua_bench", "--child", mode, "--nodes", str(args.nodes)]
            cmd += ["--seconds", str(args.seconds), "--opcua-port", str(opcua_port), "--modbus-port", str(modbus_port)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    finally:
        server.kill()
    base = sum(r["cpu_s_per_1000"] for r in results if r["mode"] == "modbus") / 2
    print(f"{args.nodes} values changing once a second, {args.seconds:g} s per mode; load {psutil.getloadavg()[0]:.1f}")
    print("| mode | values/s | CPU % of one core | CPU s per 1000 values | ratio to Modbus | RSS MB |")
    for r in results:
        print(
            f"| {r['mode']} | {r['values_per_s']:.0f} | {r['cpu_core_pct']:.1f} | {r['cpu_s_per_1000']:.4f} "
            f"| {r['cpu_s_per_1000'] / base:.2f} | {r['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
