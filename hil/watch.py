"""A live terminal view of what reaches the broker: one line per topic, newest value."""

from __future__ import annotations

import sys
import threading
import time
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


def watch(host: str, port: int, duration: float | None = None, prefix: str = "headframe") -> int:
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

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hil-watch-{int(time.time())}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=0)
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    end = time.monotonic() + duration if duration else None
    try:
        while end is None or time.monotonic() < end:
            time.sleep(1)
            with lock:
                rows = sorted(latest.items())
                total = counts["n"]
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            print(f"Headframe live view — broker {host}:{port} — {total} messages (Ctrl-C to stop)")
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
