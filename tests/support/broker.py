"""A real mosquitto broker on a free port, and an MQTT collector, for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from tests.support.certs import TLSFiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class MosquittoBroker:
    """mosquitto started as a subprocess; can be stopped and restarted on the same port."""

    #: every broker started in this process, so a failed test cannot leak one (see conftest)
    started: list[MosquittoBroker] = []  # noqa: RUF012

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: TLSFiles | None = None,
        require_client_cert: bool = False,
    ) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed: run scripts/setup.sh test")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.users, self.tls, self.require_client_cert = users or {}, tls, require_client_cert
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self._write_conf()

    def _write_conf(self) -> None:
        # Persistence keeps the collector's session (and messages queued for it) across a
        # broker stop/start, so a test can restart the broker without losing what it watches.
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 0",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.log}",
            "log_timestamp_format %H:%M:%S",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.users:
            pw = self.workdir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.server_cert}", f"keyfile {self.tls.server_key}"]
            if self.require_client_cert:
                lines.append("require_certificate true")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> MosquittoBroker:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        MosquittoBroker.started.append(self)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"mosquitto did not start; log:\n{log}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict:
        return orjson.loads(self.payload)


@dataclass
class Collector:
    """Subscribes (QoS 1, persistent session) and keeps every message it receives."""

    broker: MosquittoBroker
    topics: list[str] = field(default_factory=lambda: ["#"])
    username: str | None = None
    password: str | None = None
    client_id: str = "collector"
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.broker.tls:
            self.client.tls_set(
                ca_certs=str(self.broker.tls.ca),
                certfile=str(self.broker.tls.client_cert),
                keyfile=str(self.broker.tls.client_key),
            )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        # paho annotates the delays as int, but only adds and compares them with time.monotonic(): 0.1 s works.
        self.client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]  # fractional delay is deliberate

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])
            self._connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def start(self) -> Collector:
        self.client.connect(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("collector could not connect")
        time.sleep(0.1)  # let SUBACK land before the test publishes
        return self

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def records(self) -> list[dict]:
        """Record messages (everything but status), parsed."""
        return [m.json() for m in self.snapshot() if not m.topic.endswith("/status")]

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float = 20.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            time.sleep(0.05)
        raise TimeoutError(f"condition not met within {timeout}s; {len(self.snapshot())} messages received")

    def wait_for_seqs(self, seqs: set[int], timeout: float = 30.0) -> list[dict]:
        """Wait until every seq in ``seqs`` arrived at least once."""
        self.wait_for(lambda _: seqs <= {r["seq"] for r in self.records()}, timeout)
        return self.records()
