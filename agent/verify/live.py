"""Capture a gateway's stream live from the broker for N seconds into a JSON-lines file.

Each line is ``{"topic", "payload": <the exact payload text>, "received": ISO, "retained"}``,
written and flushed as it arrives, so an interrupted capture still holds everything received.
The payload is kept as the text received (not re-serialised): the capture is evidence.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt


class LiveError(Exception):
    """The live capture could not be made; the message says why and what to change."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_broker(text: str, tls: bool) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not host:
        raise LiveError(f"--broker {text!r}: give HOST or HOST:PORT")
    try:
        return host, int(port) if port else (8883 if tls else 1883)
    except ValueError:
        raise LiveError(f"--broker {text!r}: the port must be a number") from None


def _iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def capture_live(
    broker: str,
    topic: str,
    seconds: float,
    out: Path,
    *,
    ca_file: Path | None = None,
    username: str | None = None,
    password_file: Path | None = None,
) -> int:
    """Subscribe to ``topic`` for ``seconds`` and append every message to ``out``; returns the count."""
    host, port = parse_broker(broker, ca_file is not None)
    password = None
    if password_file is not None:
        if ca_file is None and not _is_loopback(host):
            raise LiveError(
                f"refusing to send a password in clear text to {host}:{port}: give --ca-file to use "
                "TLS (a password over plain TCP is only accepted on loopback)"
            )
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise LiveError(f"--password-file {password_file}: cannot be read ({exc.strerror})") from None
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"headframe-verify-{int(time.time() * 1000)}", clean_session=True
    )
    if username:
        client.username_pw_set(username, password)
    if ca_file is not None:
        if not ca_file.is_file():
            raise LiveError(f"--ca-file {ca_file}: no such file")
        client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    connected, lock = threading.Event(), threading.Lock()
    refused: list[str] = []
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(out, "xb")  # noqa: SIM115 - closed in finally; written from paho's thread
    except FileExistsError:
        raise LiveError(
            f"{out} already exists: a capture is evidence and is never overwritten or mixed; give another -o"
        ) from None

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            refused.append(str(rc))
        else:
            c.subscribe(topic, qos=1)
        connected.set()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        line = {
            "topic": msg.topic,
            "payload": bytes(msg.payload).decode("utf-8", "replace"),
            "received": _iso_now(),
            "retained": bool(msg.retain),
        }
        with lock:
            fh.write(orjson.dumps(line) + b"\n")
            fh.flush()
            count += 1

    client.on_connect, client.on_message = on_connect, on_message
    try:
        try:
            client.connect(host, port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise LiveError(f"cannot reach broker {host}:{port}: {exc}") from None
        client.loop_start()
        if not connected.wait(15):
            raise LiveError(f"broker {host}:{port} did not answer the MQTT connect within 15 s")
        if refused:
            raise LiveError(
                f"broker {host}:{port} refused the connection: {refused[0]} (check --username, --password-file, --ca-file)"
            )
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:  # stopping early is fine: check what arrived so far
            pass
    finally:
        client.loop_stop()
        client.disconnect()
        with lock:
            fh.close()
            if count == 0 and (refused or not connected.is_set()):
                out.unlink(missing_ok=True)  # nothing was captured: leave no empty file behind
    return count
