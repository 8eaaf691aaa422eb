"""Shared parts of the end-to-end benches: a Modbus device farm process, the agent's config for
it, a telemetry counter on the broker, and process RSS/CPU readings from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from tests.support.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]


class Farm:
    """``bench.modbus_farm`` in its own process: one TCP port per simulated device."""

    def __init__(self, devices: int, registers: int = 100) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.modbus_farm", "--devices", str(devices), "--registers", str(registers)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"device farm did not start: {line!r}")
        self.ports = [int(p) for p in line[1].split(",")]
        self.requests = 0
        self.served = 0  # registers answered
        self._frozen = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("requests "):
                parts = line.split()
                self.requests, self.served = int(parts[1]), int(parts[2])
            elif line.strip() == "frozen":
                self._frozen.set()

    def freeze(self) -> None:
        """Stop answering (no new readings from here on); ``served`` is then final."""
        self._frozen.clear()
        assert self.proc.stdin is not None
        self.proc.stdin.write("freeze\n")
        self.proc.stdin.flush()
        if not self._frozen.wait(30):
            raise TimeoutError("device farm did not freeze")

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def agent_config(
    path: Path, farm_ports: list[int], broker_port: int, buffer_path: Path, registers: int = 100, **extra: Any
) -> Path:
    """A Headframe config: one Modbus TCP device per port, ``registers`` uint16 points each, 1 Hz."""
    devices = [
        {
            "id": f"dev{i:03d}",
            "protocol": "modbus_tcp",
            "host": "127.0.0.1",
            "port": port,
            "groups": [{"name": "default", "interval": "1s"}],
            "points": [{"name": f"r{j}", "address": j, "type": "uint16"} for j in range(registers)],
        }
        for i, port in enumerate(farm_ports)
    ]
    doc: dict[str, Any] = {
        "gateway": {"site": "bench", "id": "gw"},
        "buffer": {"path": str(buffer_path)},
        "uplink": {"host": "127.0.0.1", "port": broker_port, "reconnect_min": "0.2s", "reconnect_max": "1s"},
        "health": {"interval": "30s"},
        "logging": {"level": "INFO", "journald": "off"},
        "control": {"enabled": False},
        "devices": devices,
        **extra,
    }
    path.write_text(json.dumps(doc))
    return path


class TelemetryCounter:
    """Subscribes to the agent's records (QoS 1, persistent session): counts delivered
    datapoints (one per good point value in a telemetry record; a redelivered seq counts once), per
    device, with arrival times, and every seq seen."""

    def __init__(self, broker: MosquittoBroker, topic: str = "headframe/#", client_id: str = "counter") -> None:
        self.lock = threading.Lock()
        self.datapoints = 0
        self.messages = 0
        self.first_at: float | None = None
        self.first_by_source: dict[str, float] = {}
        self.seqs: set[int] = set()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = self._on_connect
        self._topic = topic
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("telemetry counter could not connect")
        time.sleep(0.2)  # SUBACK

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(self._topic, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        if msg.topic.endswith("/status"):
            return
        doc = orjson.loads(msg.payload)
        values = doc["payload"].get("values", {}) if doc.get("kind") == "telemetry" else {}
        n = sum(1 for v in values.values() if v.get("q") == "good")  # a "bad" entry is no reading
        with self.lock:
            self.messages += 1
            if doc["seq"] in self.seqs:
                return  # a redelivery (at least once): counted when it first came
            self.datapoints += n
            self.seqs.add(doc["seq"])
            if n and self.first_at is None:
                self.first_at = now
            if n:
                self.first_by_source.setdefault(doc["source"], now)

    def missing(self) -> int:
        """Sequence numbers never received between the first and the last one seen."""
        with self.lock:
            if not self.seqs:
                return 0
            return max(self.seqs) - min(self.seqs) + 1 - len(self.seqs)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS = VmHWM) of a process, MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields[key] = rest
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def written_bytes(pid: int) -> int:
    """Bytes the process handed to write() so far (``wchar``: SQLite, state files, logs)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def wait_until(what: str, predicate: Any, timeout: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(interval)
