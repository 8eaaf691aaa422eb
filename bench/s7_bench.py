"""What the S7 driver costs beside Modbus TCP: CPU per 1000 values and RSS, every value changing.

    .venv/bin/python -m bench.s7_bench [--devices 20] [--points 100] [--seconds 10]

Each device has ``points`` values, half REAL/float32 and half INT/int16, all changing every
poll (so every value is decoded and reported). The peers run in one separate process: snap7's
own S7 server per S7 device, a pymodbus TCP server per Modbus device. Each measured run is a
fresh process (clean RSS): our agent's ``Drivers`` for S7, the same for Modbus TCP, and as
baselines bare client loops reading the same bytes/registers at the same rate without
planning, decoding or reporting (snap7 ``AsyncClient.db_read``, pymodbus ``read_holding_registers``).
Figures: CPU of the polling process per 1000 values read, % of one core, requests per second,
RSS after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import struct
import time
from multiprocessing.synchronize import Event as EventType
from typing import Any

import psutil

from buffer.record import Kind, Record
from tests.support.broker import free_port

DB = 10


def _s7_points(n: int) -> list[str]:
    half = n // 2
    reals = [f"{{name: r{j}, address: DB{DB}.DBD{4 * j}, type: REAL}}" for j in range(half)]
    ints = [f"{{name: i{j}, address: DB{DB}.DBW{4 * half + 2 * j}, type: INT}}" for j in range(n - half)]
    return reals + ints


def _mb_points(n: int) -> list[str]:
    half = n // 2
    floats = [f"{{name: r{j}, address: {2 * j}, type: float32}}" for j in range(half)]
    ints = [f"{{name: i{j}, address: {2 * half + j}, type: int16}}" for j in range(n - half)]
    return floats + ints


def config(protocol: str, ports: list[int], points: int) -> str:
    devices = []
    pts = ", ".join(_s7_points(points) if protocol == "s7" else _mb_points(points))
    for i, port in enumerate(ports):
        devices.append(
            f"  - {{id: dev{i}, protocol: {'s7' if protocol == 's7' else 'modbus_tcp'}, host: 127.0.0.1, port: {port}, "
            f"groups: [{{name: default, interval: 1s}}], points: [{pts}]}}"
        )
    return "gateway: {site: s, id: g}\ndevices:\n" + "\n".join(devices) + "\n"


def serve(s7_ports: list[int], mb_ports: list[int], points: int, ready: EventType) -> None:
    """Every value changes every 0.25 s in every peer."""
    from hil.sim.modbus_slaves import RegisterImage, ServerThread
    from tests.support.s7plc import S7Plc

    size = 4 * points
    plcs = [S7Plc({("DB", DB): size}, port=p).start() for p in s7_ports]
    images = [RegisterImage(size=2 * points + 10) for _ in mb_ports]
    servers = [ServerThread({1: img}, tcp_port=p).start() for img, p in zip(images, mb_ports, strict=True)]
    ready.set()
    half = points // 2
    k = 0
    try:
        while True:
            k += 1
            raw = b"".join(struct.pack(">f", k + j * 0.5) for j in range(half))
            raw += b"".join(struct.pack(">h", (k + j) % 30000) for j in range(points - half))
            for plc in plcs:
                plc.write("DB", DB, 0, raw)
            regs = [struct.unpack(">H", raw[i : i + 2])[0] for i in range(0, 4 * half, 2)]
            regs += [(k + j) % 30000 for j in range(points - half)]
            for img in images:
                img.set_registers("holding", 0, regs)
            time.sleep(0.25)
    finally:
        for plc in plcs:
            plc.stop()
        for s in servers:
            s.stop()


class CountingSink:
    """Counts reported values and drops the records (a list would grow the RSS being measured)."""

    def __init__(self) -> None:
        self.values = 0

    def emit(self, record: Record) -> None:
        if record.kind is Kind.TELEMETRY:
            self.values += sum(1 for v in record.payload["values"].values() if v["q"] == "good")


def _cpu() -> float:
    """CPU seconds of this process, all threads (CLOCK_PROCESS_CPUTIME_ID: ns, not 10 ms ticks)."""
    return time.process_time()


async def _ours(protocol: str, ports: list[int], points: int, seconds: float) -> dict[str, Any]:
    from config import load_settings_text
    from drivers.runtime import Drivers

    sink = CountingSink()
    drivers = Drivers(load_settings_text(config(protocol, ports, points)), sink)
    await drivers.start()
    await asyncio.sleep(2.5)  # connect and settle
    c0, t0, v0 = _cpu(), time.monotonic(), sink.values
    r0 = sum(p.requests_issued for p in drivers.pollers)
    await asyncio.sleep(seconds)
    c1, t1 = _cpu(), time.monotonic()
    out = {
        "cpu": c1 - c0,
        "wall": t1 - t0,
        "values": sink.values - v0,
        "requests": sum(p.requests_issued for p in drivers.pollers) - r0,
        "bad": [p.health.last_error for p in drivers.pollers if p.health.state != "ok"][:1],
    }
    await drivers.stop()
    return out


async def _bare(protocol: str, ports: list[int], points: int, seconds: float) -> dict[str, Any]:
    """The same reads at the same rate, without planning, decoding or reporting."""
    size = 4 * (points // 2) + 2 * (points - points // 2)
    regs = size // 2
    counts = {"requests": 0}
    if protocol == "s7":
        from snap7 import AsyncClient

        clients: list[Any] = []
        for p in ports:
            c = AsyncClient()
            await c.connect("127.0.0.1", 0, 1, p)
            clients.append(c)

        async def read(c: Any) -> None:
            for start in range(0, size, 222):  # the same 240-byte PDU as the driver asks for
                await c.db_read(DB, start, min(222, size - start))
                counts["requests"] += 1
    else:
        from pymodbus.client import AsyncModbusTcpClient

        clients = [AsyncModbusTcpClient("127.0.0.1", port=p, timeout=2, retries=0) for p in ports]
        for c in clients:
            await c.connect()

        async def read(c: Any) -> None:
            for start in range(0, regs, 125):
                await c.read_holding_registers(start, count=min(125, regs - start), device_id=1)
                counts["requests"] += 1

    async def loop(c: Any, stop: float) -> None:
        while time.monotonic() < stop:
            await read(c)
            await asyncio.sleep(1.0)

    await asyncio.sleep(0.5)
    c0, t0 = _cpu(), time.monotonic()
    await asyncio.gather(*(loop(c, t0 + seconds) for c in clients))
    c1, t1 = _cpu(), time.monotonic()
    for c in clients:
        res = c.disconnect() if protocol == "s7" else c.close()
        if asyncio.iscoroutine(res):
            await res
    polls = counts["requests"] / max(1, -(-size // 222) if protocol == "s7" else -(-regs // 125))
    return {"cpu": c1 - c0, "wall": t1 - t0, "values": int(polls * points), "requests": counts["requests"], "bad": []}


def run(kind: str, protocol: str, ports: list[int], points: int, seconds: float, out: Any) -> None:
    body = _ours if kind == "ours" else _bare
    result = asyncio.run(body(protocol, ports, points, seconds))
    result["rss"] = psutil.Process().memory_info().rss / 1e6
    out.put(result)


def measure(kind: str, protocol: str, ports: list[int], points: int, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=run, args=(kind, protocol, ports, points, seconds, out))
    proc.start()
    result: dict[str, Any] = out.get(timeout=seconds + 120)
    proc.join(30)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    s7_ports = [free_port() for _ in range(args.devices)]
    mb_ports = [free_port() for _ in range(args.devices)]
    ready = mp.Event()
    peers = mp.Process(target=serve, args=(s7_ports, mb_ports, args.points, ready), daemon=True)
    peers.start()
    ready.wait(60)
    time.sleep(1)
    try:
        rows = []
        for kind, protocol in (("ours", "s7"), ("bare", "s7"), ("ours", "modbus"), ("bare", "modbus")):
            ports = s7_ports if protocol == "s7" else mb_ports
            rows.append((kind, protocol, measure(kind, protocol, ports, args.points, args.seconds)))
    finally:
        peers.kill()
    print(f"{args.devices} devices x {args.points} changing values at 1 Hz, {args.seconds:.0f} s measured")
    by = {(k, p): r for k, p, r in rows}
    for kind, protocol, r in rows:
        per_k = r["cpu"] / max(1, r["values"]) * 1000 * 1000  # ms of CPU per 1000 values
        who = "headframe " if kind == "ours" else "bare loop "
        label = who + ("S7 (snap7)" if protocol == "s7" else "Modbus TCP (pymodbus)")
        ratio = ""
        if kind == "ours":
            bare = by[("bare", protocol)]
            ratio = f"; x{r['cpu'] / max(1e-9, bare['cpu']):.2f} the bare loop"
        print(
            f"{label:38s} {per_k:6.2f} ms CPU per 1000 values, {r['cpu'] / r['wall'] * 100:5.1f}% of one core, "
            f"{r['requests'] / r['wall']:5.1f} requests/s, {r['values'] / r['wall']:6.0f} values/s, RSS {r['rss']:.0f} MB{ratio}"
            + (f"  NOT OK: {r['bad'][0]}" if r["bad"] else "")
        )
    s7, mb = by[("ours", "s7")], by[("ours", "modbus")]
    per_value = (s7["cpu"] / s7["values"]) / (mb["cpu"] / mb["values"])
    print(f"S7 vs Modbus TCP (headframe, same values): CPU per value x{per_value:.2f}, RSS {s7['rss'] - mb['rss']:+.0f} MB")


if __name__ == "__main__":
    main()
