"""``headframe fleet``: watch many gateways' health and status over MQTT."""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.fleet.metrics import parse_listen, serve
from agent.fleet.model import FleetState
from agent.fleet.view import FleetWeb, text_table
from config.metrics import is_loopback
from config.spine import is_loopback_host


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="fleet health view (terminal and local web page)")
    p.add_argument("--broker", required=True, help="HOST[:PORT]")
    p.add_argument("--prefix", default="headframe")
    p.add_argument("--username")
    p.add_argument("--password-file", type=Path)
    p.add_argument("--ca-file", type=Path, help="enables TLS, verifying the broker against this CA")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow --password-file over plain TCP to a broker off loopback (the password crosses the network in clear)",
    )
    p.add_argument("--offline-after", type=float, default=5.0, help="minutes offline before it is flagged")
    p.add_argument("--once", action="store_true", help="collect for --wait seconds, print one table, exit")
    p.add_argument("--wait", type=float, default=3.0)
    p.add_argument("--http", help="serve the page on ADDR:PORT, e.g. 127.0.0.1:8080")
    p.add_argument("--metrics", help="serve Prometheus metrics of every gateway on ADDR:PORT, e.g. 127.0.0.1:9465")
    p.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow --metrics on a non-loopback address (the exporter has no authentication)",
    )
    p.add_argument("--max-gateways", type=int, default=1000, help="gateways tracked at most (topics are untrusted)")
    p.set_defaults(func=cmd_fleet)


def clear_text_refusal(host: str, args: argparse.Namespace) -> str | None:
    """The agent's rule (config/spine.py): credentials go in clear only to loopback. Returns the
    error to print, or None when connecting is fine."""
    if args.password_file is None or args.ca_file is not None or args.insecure or is_loopback_host(host):
        return None
    return (
        f"error: --password-file would send the password to broker {host} in clear text (no --ca-file, "
        "so no TLS). Give --ca-file CA.pem to use TLS (port 8883 unless given), or --insecure if this "
        "network is trusted"
    )


def cmd_fleet(args: argparse.Namespace) -> int:
    host, _, port = args.broker.partition(":")
    refusal = clear_text_refusal(host, args)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    metrics_at: tuple[str, int] | None = None
    if args.metrics:
        try:
            metrics_at = parse_listen(args.metrics)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not is_loopback(metrics_at[0]) and not args.metrics_allow_remote:
            print(
                f"error: --metrics {args.metrics}: not a loopback address, and the exporter has no authentication; "
                "add --metrics-allow-remote if anyone who reaches it may read every gateway's metrics",
                file=sys.stderr,
            )
            return 2
    state = FleetState(offline_after_s=args.offline_after * 60, max_gateways=args.max_gateways)
    lock = threading.Lock()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"headframe-fleet-{int(time.time())}")
    if args.password_file is not None and not args.username:
        print("error: --password-file needs --username (the broker checks the pair)", file=sys.stderr)
        return 2
    if args.username:
        try:
            password = args.password_file.read_text().strip() if args.password_file else None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            print(f"error: --password-file {args.password_file}: {reason}; give a readable text file", file=sys.stderr)
            return 2
        client.username_pw_set(args.username, password)
    if args.ca_file:
        client.tls_set(ca_certs=str(args.ca_file), cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        c.subscribe([(f"{args.prefix}/+/+/status", 1), (f"{args.prefix}/+/+/health/#", 0)])

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            state.on_message(msg.topic, bytes(msg.payload))

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, int(port or (8883 if args.ca_file else 1883)))
    except OSError as exc:
        print(f"error: cannot reach broker {args.broker}: {exc}", file=sys.stderr)
        return 2
    client.loop_start()
    try:
        if args.http:
            addr, _, hport = args.http.partition(":")
            web = FleetWeb(state, lock, addr, int(hport))
            web.serve_in_background()
            print(f"fleet page: http://{addr}:{web.port}/", flush=True)
        if metrics_at is not None:
            try:
                server = serve(state, lock, *metrics_at)
            except OSError as exc:
                print(f"error: --metrics {args.metrics}: cannot listen: {exc.strerror or exc}", file=sys.stderr)
                return 2
            print(f"fleet metrics: http://{args.metrics.rpartition(':')[0]}:{server.server_port}/metrics", flush=True)
        if args.once:
            time.sleep(args.wait)
            with lock:
                print(text_table(state.rows()))
            return 0
        while True:
            time.sleep(2)
            with lock:
                table = text_table(state.rows())
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            print(table, flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        client.loop_stop()
        client.disconnect()
