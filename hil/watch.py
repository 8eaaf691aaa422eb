"""A live terminal view of what reaches the broker: one line per topic, newest value.

Against a real site the broker wants what the agent's config says: TLS verified against its
CA (and a client certificate if it has one), the username and the password from
``uplink.password_file``. ``BrokerLink.from_config`` reads them; the password is never printed.
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt


def summarise(doc: dict[str, Any]) -> str:
    p = doc.get("payload", {})
    if "values" in p:
        vals = list(p["values"].items())[:4]
        return ", ".join(
            f"{k}={v.get('v')!s:.8}{v.get('unit', '')}" + ("" if v.get("q") == "good" else f"({v.get('q')})") for k, v in vals
        )
    if doc.get("kind") == "health":
        b, u = p.get("buffer", {}), p.get("uplink", {})
        return f"backlog {b.get('depth')} uplink {u.get('state')} cpu {p.get('system', {}).get('cpu_percent')}%"
    keys = [k for k in ("event", "alarm", "state", "kind", "zones", "lines", "underground", "fps") if k in p]
    return " ".join(f"{k}={str(p[k])[:40]}" for k in keys)


@dataclass(frozen=True)
class BrokerLink:
    """Where and how to connect; ``password`` stays out of ``repr`` and of every message."""

    host: str
    port: int
    prefix: str = "headframe"
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, path: Path) -> BrokerLink:
        """The agent's own broker settings (raises ``config.ConfigError`` naming the problem)."""
        from agent.uplink.session import read_password
        from config import load_settings

        up = load_settings(path).uplink
        tls = up.tls
        return cls(
            host=up.host,
            port=up.effective_port,
            prefix=up.topic_prefix,
            tls=tls is not None,
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            username=up.username,
            password=read_password(up),
        )

    def describe(self) -> str:
        how = ["TLS" if self.tls else "plain TCP"] + ([f"user {self.username}"] if self.username else [])
        return f"{self.host}:{self.port} ({', '.join(how)})"

    def client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hil-watch-{int(time.time())}")
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(
                ca_certs=str(self.ca_file) if self.ca_file else None,
                certfile=str(self.cert_file) if self.cert_file else None,
                keyfile=str(self.key_file) if self.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        return client


def watch(link: BrokerLink, duration: float | None = None) -> int:
    """Show what reaches ``link`` until ``duration`` s or Ctrl-C; 1 when the broker refuses us."""
    host, port, prefix = link.host, link.port, link.prefix
    latest: dict[str, tuple[int, str, float]] = {}
    lock = threading.Lock()
    counts = {"n": 0}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        try:
            doc = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        with lock:
            counts["n"] += 1
            latest[msg.topic] = (doc.get("seq", 0), summarise(doc) if "seq" in doc else str(doc.get("status")), time.time())

    refused: list[str] = []

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            refused.append(str(rc))
            c.disconnect()
            return
        c.subscribe(f"{prefix}/#", qos=0)

    client = link.client()
    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, port)
    except (OSError, ssl.SSLError) as exc:
        print(f"error: cannot connect to broker {link.describe()}: {exc}", file=sys.stderr)
        return 1
    client.loop_start()
    end = time.monotonic() + duration if duration else None
    try:
        while end is None or time.monotonic() < end:
            time.sleep(1)
            if refused:
                print(f"error: broker {link.describe()} refused the connection: {refused[0]}", file=sys.stderr)
                return 1
            with lock:
                rows = sorted(latest.items())
                total = counts["n"]
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            print(f"Headframe live view — broker {link.describe()} — {total} messages (Ctrl-C to stop)")
            for topic, (seq, text, ts) in rows:
                short = "/".join(topic.split("/")[3:])
                print(f"{short:<28} seq {seq:>7}  {time.strftime('%H:%M:%S', time.localtime(ts))}  {text[:90]}")
            print(flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.loop_stop()
        client.disconnect()
    return 0
