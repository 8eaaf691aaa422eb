"""Drain against the best bare paho publisher for the same work, with a subscriber attached.

    .venv/bin/python -m bench.drain_bench [--records 50000] [--runs 5] [--inflight 1000]

Same work on both sides: the same records' topics and bodies (``JsonFormatter`` over the same
stored records), QoS 1, the same in-flight window, a real mosquitto, and a real subscriber
(``mosquitto_sub -q 1 -C N``, its own process) that must receive all N messages.

Ours: N records already committed in the buffer (``BufferService``), ``Uplink`` drains them
(lease, format, publish, PUBACK, ack = delete from SQLite). Baseline: one thread, paho without
its network thread, driven by ``select`` on its socket: publish until the window is full, then
read PUBACKs and write in batches (``on_socket_register_write`` set so ``publish`` does not
issue one ``send`` per message); paho's own in-flight limit off (the window bounds it). It
holds the N bodies in memory and keeps nothing durable: the ratio is the price of the buffer.

Runs alternate ours / bare; each prints msg/s to the last PUBACK, to the subscriber's last
message, and the publishing process's CPU µs per message. Min and median over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.uplink import JsonFormatter, OutboundMessage, Topics, Uplink
from bench.spine_bench import records
from buffer import BufferStore
from buffer.boundary import BufferService
from config import Settings, load_settings_text
from tests.support.broker import MosquittoBroker

TOPIC_FILTER = "headframe/+/+/telemetry/#"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return r.ru_utime + r.ru_stime


def _settings(db: Path, port: int, inflight: int) -> Settings:
    doc = {
        "gateway": {"site": "s", "id": "gw"},
        "buffer": {"path": str(db), "max_bytes": "20GiB"},
        "uplink": {"host": "127.0.0.1", "port": port, "inflight": inflight},
    }
    return load_settings_text(json.dumps(doc))


class Subscriber:
    """``mosquitto_sub`` receiving exactly ``n`` messages at QoS 1; ``wait`` returns when it has."""

    def __init__(self, port: int, n: int, run: int) -> None:
        exe = shutil.which("mosquitto_sub")
        if exe is None:
            raise RuntimeError("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
        self.proc = subprocess.Popen(
            [exe, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", TOPIC_FILTER, "-C", str(n), "-i", f"sub-{run}"],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # SUBACK before anything is published

    def wait(self, timeout: float = 600) -> float:
        self.proc.wait(timeout)
        return time.perf_counter()


async def _ours(settings: Settings, n: int, sub: Subscriber) -> dict[str, float]:
    service = BufferService(settings, lambda: True)
    await service.open()
    recs = records(n)
    for i in range(0, n, 10_000):
        await service.append(recs[i : i + 10_000])
    uplink = Uplink(settings, service)
    stop = asyncio.Event()
    c0, t0 = _cpu(), time.perf_counter()
    task = asyncio.create_task(uplink.run(stop))
    while uplink.acked < n:
        await asyncio.sleep(0.01)
    acked_at, cpu = time.perf_counter(), _cpu() - c0
    delivered_at = await asyncio.to_thread(sub.wait)
    stop.set()
    await task
    await service.close()
    return {"acked_s": acked_at - t0, "delivered_s": delivered_at - t0, "cpu_us": cpu / n * 1e6}


def bare(port: int, messages: list[OutboundMessage], inflight: int, sub: Subscriber) -> dict[str, float]:
    """The best plain paho publisher for the job: one thread, no network thread, batched writes."""
    acked = 0

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Properties) -> None:
        nonlocal acked
        acked += 1

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare")
    c.max_inflight_messages_set(0)  # our window bounds it (paho's limit scans its queue on every ack)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.on_socket_register_write = lambda *_: None  # publish queues; we write when the socket can take it
    c.connect("127.0.0.1", port)
    sock = c.socket()
    assert sock is not None, "paho has no socket after connect()"
    while not c.is_connected():  # CONNECT out, CONNACK in
        readable, writable, _ = select.select([sock], [sock] if c.want_write() else [], [], 1)
        if writable:
            c.loop_write()
        if readable:
            c.loop_read()
    n, sent = len(messages), 0
    c0, t0 = _cpu(), time.perf_counter()
    last_misc = t0
    while acked < n:
        while sent < n and sent - acked < inflight:
            m = messages[sent]
            c.publish(m.topic, m.payload, qos=1)
            sent += 1
        readable, writable, _ = select.select([sock], [sock] if c.want_write() else [], [], 1)
        if writable:
            c.loop_write()
        if readable:
            c.loop_read(max_packets=inflight)
        now = time.perf_counter()
        if now - last_misc > 1:
            c.loop_misc()
            last_misc = now
    acked_at, cpu = time.perf_counter(), _cpu() - c0
    delivered_at = sub.wait()
    c.disconnect()
    c.loop_write()
    return {"acked_s": acked_at - t0, "delivered_s": delivered_at - t0, "cpu_us": cpu / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=1000)
    args = ap.parse_args()
    n = args.records
    tmp = Path(tempfile.mkdtemp(prefix="hf-drain-"))
    broker = MosquittoBroker(tmp / "broker").start()
    settings = _settings(tmp / "bodies.db", broker.port, args.inflight)
    store = BufferStore(tmp / "bodies.db", gateway="gw", site="s", max_bytes=10 * 1024**3)
    store.append(records(n))
    fmt = JsonFormatter(Topics(settings))
    messages = [fmt.format(r) for r in store.lease(n)]  # the exact topics and bodies the uplink sends
    store.close()
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    try:
        for run in range(args.runs):
            s = _settings(tmp / f"ours-{run}.db", broker.port, args.inflight)
            ours.append(asyncio.run(_ours(s, n, Subscriber(broker.port, n, 2 * run))))
            base.append(bare(broker.port, messages, args.inflight, Subscriber(broker.port, n, 2 * run + 1)))
            o, b = ours[-1], base[-1]
            print(
                f"run {run + 1}: ours {n / o['acked_s']:,.0f} msg/s acked, {n / o['delivered_s']:,.0f} delivered, "
                f"{o['cpu_us']:.1f} µs CPU/msg | bare paho {n / b['acked_s']:,.0f} acked, {n / b['delivered_s']:,.0f} "
                f"delivered, {b['cpu_us']:.1f} µs CPU/msg",
                flush=True,
            )
    finally:
        broker.stop()

    def rate(rs: list[dict[str, float]], key: str) -> tuple[float, float]:
        xs = [n / r[key] for r in rs]
        return min(xs), statistics.median(xs)

    for key, label in (("acked_s", "to last PUBACK"), ("delivered_s", "delivered to the subscriber")):
        (omin, omed), (bmin, bmed) = rate(ours, key), rate(base, key)
        print(
            f"drain {n:,} msgs QoS 1 window {args.inflight}, {label}: ours min {omin:,.0f} / median {omed:,.0f} msg/s; "
            f"bare paho min {bmin:,.0f} / median {bmed:,.0f} msg/s; ratio of medians {omed / bmed:.2f}, of mins {omin / bmin:.2f}"
        )
    ocpu = statistics.median(r["cpu_us"] for r in ours)
    bcpu = statistics.median(r["cpu_us"] for r in base)
    print(f"CPU per message (median): ours {ocpu:.1f} µs, bare paho {bcpu:.1f} µs -> ours costs {ocpu / bcpu:.2f}x")


if __name__ == "__main__":
    main()
