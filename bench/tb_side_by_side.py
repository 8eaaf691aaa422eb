"""Headframe and ThingsBoard IoT Gateway side by side: the same simulated Modbus devices, the
same mosquitto, each measured from outside.

    .venv/bin/python -m bench.tb_side_by_side [--devices 10] [--registers 100] [--seconds 30] [--outage 60]
        [--venv bench/.tbvenv]

The bench installs ``thingsboard-gateway`` (PyPI, pinned) into its own virtual environment
(``--venv``, default ``bench/.tbvenv``, ignored by git) the first time. Devices:
``bench.modbus_farm`` (one process, one TCP port per device, every register changing on every
request). Each gateway gets its own farm and broker, one after the other, the same shape: N
devices x R ``uint16`` registers (one key per register on ThingsBoard's side), 1 s poll.

ThingsBoard's gateway asks the server for its session limits (RPC ``getSessionLimits`` on
``v1/devices/me/rpc/request/N``) and does not publish telemetry until it has an answer; a plain
mosquitto never answers. **This bench answers it** (``SessionLimitsResponder``) with no rate
limits and ``maxInflightMessages`` 1000, the most favourable answer a server can give.

Printed for both: datapoints/s delivered at the broker (values in telemetry messages), CPU
seconds per 1000 datapoints (the gateway's process tree, user + system), RSS (tree), and, across
a broker outage of ``--outage`` s, the readings lost: registers the farm answered minus
datapoints delivered, once the farm stopped answering and the gateway had drained (or
``--drain`` s passed: then "not delivered by the end" is what it says).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil

from bench.sitefarm import REPO, Farm, TelemetryCounter, agent_config, wait_until
from tests.support.broker import MosquittoBroker

TB_PACKAGE = "thingsboard-gateway==3.8.5"
RPC_REQUEST = "v1/devices/me/rpc/request/"
RPC_RESPONSE = "v1/devices/me/rpc/response/"
SESSION_LIMITS = {
    "maxInflightMessages": 1000,
    "maxPayloadSize": 65536,
    "rateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"},
    "gatewayRateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"},
}


def ensure_tb(venv: Path) -> Path:
    """The ThingsBoard gateway's entry point, installing it into ``venv`` the first time."""
    exe = venv / "bin" / "thingsboard-gateway"
    if not exe.exists():
        print(f"installing {TB_PACKAGE} into {venv} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", TB_PACKAGE], check=True)
    return exe


class SessionLimitsResponder:
    """Plays the ThingsBoard server's part the gateway waits for: answers ``getSessionLimits``."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.answered = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tb-server-stand-in")
        self.client.on_connect = lambda c, *_: c.subscribe(RPC_REQUEST + "+", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        if doc.get("method") == "getSessionLimits":
            client.publish(RPC_RESPONSE + msg.topic[len(RPC_REQUEST) :], orjson.dumps(SESSION_LIMITS), qos=1)
            self.answered += 1

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class TbTelemetryCounter:
    """Counts datapoints in ``v1/gateway/telemetry`` (``{device: [{"ts", "values": {...}}]}``);
    a (device, ts, key) seen before is a redelivery and counts once."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.lock = threading.Lock()
        self.datapoints = 0
        self.seen: set[int] = set()
        self.first_by_source: dict[str, float] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tb-counter", clean_session=False)
        self.client.on_connect = lambda c, *_: c.subscribe("v1/gateway/telemetry", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        now = time.monotonic()
        with self.lock:
            for device, entries in doc.items():
                for e in entries if isinstance(entries, list) else [entries]:
                    if isinstance(e, dict):
                        ts = e.get("ts")
                        for key in e.get("values", {}):
                            self.seen.add(hash((device, ts, key)))  # a redelivery counts once
                self.first_by_source.setdefault(device, now)
            self.datapoints = len(self.seen)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def tb_config(root: Path, exe: Path, ports: list[int], broker_port: int, registers: int) -> Path:
    """The gateway's config directory: its shipped defaults, our broker, one Modbus connector."""
    shipped = next((exe.parent.parent / "lib").glob("python3*/site-packages/thingsboard_gateway/config"))
    cfg = root / "config"
    shutil.copytree(shipped, cfg)
    (root / "logs").mkdir()
    logs = (cfg / "logs.json").read_text().replace("./logs/", f"{root}/logs/")
    (cfg / "logs.json").write_text(logs)
    main = json.loads((cfg / "tb_gateway.json").read_text())
    tb = main["thingsboard"]
    tb.update(host="127.0.0.1", port=broker_port, remoteConfiguration=False, remoteShell=False)
    tb["security"] = {"type": "accessToken", "accessToken": "bench"}
    tb["statistics"]["enable"] = False
    main["connectors"] = [{"type": "modbus", "name": "Modbus", "configuration": "bench_modbus.json"}]
    (cfg / "tb_gateway.json").write_text(json.dumps(main, indent=1))
    slaves = [
        {
            "host": "127.0.0.1",
            "port": port,
            "type": "tcp",
            "method": "socket",
            "unitId": 1,
            "deviceName": f"dev{i:03d}",
            "deviceType": "default",
            "timeout": 1,
            "byteOrder": "BIG",
            "wordOrder": "BIG",
            "retries": 1,
            "pollPeriod": 1000,
            "connectAttemptTimeMs": 1000,
            "connectAttemptCount": 5,
            "waitAfterFailedAttemptsMs": 1000,
            "attributes": [],
            "timeseries": [
                {"tag": f"r{j}", "type": "16uint", "functionCode": 3, "objectsCount": 1, "address": j} for j in range(registers)
            ],
            "attributeUpdates": [],
            "rpc": [],
        }
        for i, port in enumerate(ports)
    ]
    (cfg / "bench_modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}))
    return cfg


def tree_cpu_rss(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process and its children."""
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    cpu = rss = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            pass
    return cpu, rss


def run_one(side: str, exe: Path, devices: int, registers: int, seconds: float, outage: float, drain: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"hf-vs-{side}-"))
    farm = Farm(devices, registers)
    broker = MosquittoBroker(tmp / "broker").start()
    responder = SessionLimitsResponder(broker) if side == "thingsboard" else None
    counter: TelemetryCounter | TbTelemetryCounter = (
        TbTelemetryCounter(broker) if side == "thingsboard" else TelemetryCounter(broker, client_id="hf-counter")
    )
    log = open(tmp / "gateway.log", "wb")  # noqa: SIM115
    if side == "thingsboard":
        cfg = tb_config(tmp, exe, farm.ports, broker.port, registers)
        env = {"TB_GW_CONFIG_DIR": str(cfg), "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen([str(exe)], cwd=tmp, env=env, stdout=log, stderr=log)
    else:
        cfg = agent_config(tmp / "agent.json", farm.ports, broker.port, tmp / "buf.db", registers=registers)
        env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
        cmd = [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)]
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log)
    out: dict[str, float] = {}
    try:
        try:
            wait_until("every device delivered", lambda: len(counter.first_by_source) >= devices, 120, 0.2)
        except TimeoutError:
            print(f"  {side}: only {len(counter.first_by_source)} of {devices} devices delivered within 120 s", flush=True)
        time.sleep(5)
        c0, d0, t0 = tree_cpu_rss(proc.pid)[0], counter.datapoints, time.monotonic()
        time.sleep(seconds)
        c1, rss = tree_cpu_rss(proc.pid)
        d1, t1 = counter.datapoints, time.monotonic()
        dps = (d1 - d0) / (t1 - t0)
        out = {
            "dps": dps,
            "expected": devices * registers,
            "cpu_pct": (c1 - c0) / (t1 - t0) * 100,
            "cpu_per_1000": (c1 - c0) / max(1, d1 - d0) * 1000,
            "rss": rss,
        }
        if outage:
            broker.stop()
            time.sleep(outage)
            broker.start()
            time.sleep(max(10.0, outage / 2))
            farm.freeze()
            served = farm.served
            last, still = counter.datapoints, time.monotonic()
            deadline = time.monotonic() + drain
            while time.monotonic() < deadline and time.monotonic() - still < 10:
                time.sleep(1)
                if counter.datapoints != last:
                    last, still = counter.datapoints, time.monotonic()
            out["served"], out["delivered"] = served, counter.datapoints
            out["lost"] = served - counter.datapoints
            out["rss_after"] = tree_cpu_rss(proc.pid)[1]
        if responder is not None:
            out["rpc_answered"] = responder.answered
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        counter.stop()
        if responder is not None:
            responder.stop()
        broker.stop()
        farm.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--registers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--outage", type=float, default=60)
    ap.add_argument("--drain", type=float, default=180, help="longest wait for a backlog after polling stopped")
    ap.add_argument("--venv", type=Path, default=REPO / "bench" / ".tbvenv")
    args = ap.parse_args()
    exe = ensure_tb(args.venv)
    res = {}
    for side in ("headframe", "thingsboard"):
        r = res[side] = run_one(side, exe, args.devices, args.registers, args.seconds, args.outage, args.drain)
        print(
            f"{side}: {r['dps']:,.0f} datapoints/s delivered of {r['expected']:,} polled; CPU {r['cpu_pct']:.1f} % of one "
            f"core = {r['cpu_per_1000']:.4f} CPU s per 1000 datapoints; RSS {r['rss']:.0f} MB"
            + (
                f"; outage {args.outage:.0f} s: {r['served']:,} readings answered, {r['delivered']:,} delivered, "
                f"lost or not delivered by the end {r['lost']:,}; RSS after {r['rss_after']:.0f} MB"
                if "served" in r
                else ""
            )
            + (f"; session-limits RPC answered {r['rpc_answered']:.0f}x by the bench" if "rpc_answered" in r else ""),
            flush=True,
        )
    h, t = res["headframe"], res["thingsboard"]
    print(
        f"{args.devices} devices x {args.registers} registers: Headframe/ThingsBoard CPU per datapoint "
        f"{h['cpu_per_1000'] / t['cpu_per_1000']:.2f}x [target <= 0.1]; RSS {h['rss'] / t['rss']:.2f}x "
        f"[target <= 0.75 at 10 devices, <= 0.5 at 100]; delivered {h['dps'] / max(1, t['dps']):.2f}x"
    )


if __name__ == "__main__":
    main()
