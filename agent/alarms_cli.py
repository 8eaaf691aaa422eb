"""``headframe alarms list|ack|handle|close``: the on-site engineer's view of the alarms.

Talks to the running agent over its control socket (agent/control.py); the agent records each
command before the alarm manager acts on it, exactly like a command from the platform.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

from config.spine import ControlSettings

DEFAULT_SOCKET = ControlSettings().socket
TIMEOUT_S = 15.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alarms", help="list, acknowledge, handle or close alarms on the running agent")
    p.add_argument("action", choices=["list", "ack", "handle", "close"])
    p.add_argument("alarm_id", nargs="?", help="the alarm id (ack, handle, close); see 'alarms list'")
    p.add_argument("-c", "--config", type=Path, help="read control.socket from this config")
    p.add_argument("--socket", type=Path, help=f"the agent's control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--id", help="command id (default: a new one); repeating an id does nothing twice")
    p.add_argument("--json", action="store_true", help="print the agent's answer as JSON")
    p.set_defaults(func=cmd_alarms)


class ControlError(Exception):
    """Why the agent could not be asked; the message says what to do."""


def socket_path(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if args.config:
        from config import load_or_report

        settings = load_or_report(args.config)
        if settings is None:
            raise ControlError(f"config {args.config} is invalid (see above)")
        return settings.control.socket
    return DEFAULT_SOCKET


def ask(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request line, read one answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(
                f"no agent answers on {path}: is the agent running? (systemctl status headframe; or give --socket / -c CONFIG)"
            ) from None
        except PermissionError:
            raise ControlError(
                f"permission denied on {path}: add yourself to group headframe "
                "(sudo usermod -aG headframe $USER, then log in again)"
            ) from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"the agent on {path} did not answer within {TIMEOUT_S:.0f}s") from None
            if not chunk:
                break
            data += chunk
    if not data:
        raise ControlError(f"the agent on {path} closed the connection without an answer")
    return dict(json.loads(data))


def list_offline(config: Path) -> dict[str, Any] | None:
    """``list`` with the agent stopped: the alarm manager's last committed state, read-only."""
    from agent.control import read_open_alarms
    from config import load_or_report

    settings = load_or_report(config)
    if settings is None or not settings.buffer.path.exists():
        return None
    alarms, note = read_open_alarms(settings.buffer.path)
    return {"ok": True, "alarms": alarms, **({"note": note} if note else {})}


def print_alarms(alarms: list[dict[str, Any]]) -> None:
    if not alarms:
        print("no open alarms")
        return
    cols = ("id", "type", "severity", "state", "raised_at", "reannounced", "escalation_level")
    rows = [[str(a.get(c, "")) for c in cols] for a in alarms]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    for row in [list(cols), *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def cmd_alarms(args: argparse.Namespace) -> int:
    if args.action != "list" and not args.alarm_id:
        print(f"headframe alarms {args.action}: give the alarm id (see 'headframe alarms list')", file=sys.stderr)
        return 2
    request: dict[str, Any] = {"op": args.action}
    if args.action != "list":
        request["target"] = args.alarm_id
        if args.id:
            request["id"] = args.id
    try:
        path = socket_path(args)
        answer = ask(path, request)
    except ControlError as exc:
        if args.action == "list" and args.config and (offline := list_offline(args.config)) is not None:
            print(f"headframe alarms: {exc}\nshowing the state saved in the buffer database instead", file=sys.stderr)
            answer = offline
        else:
            print(f"headframe alarms: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    elif args.action == "list" and answer.get("ok"):
        print_alarms(answer.get("alarms", []))
        if answer.get("note"):
            print(f"({answer['note']})", file=sys.stderr)
    elif answer.get("ok"):
        reply = answer.get("reply", {})
        print(f"{args.alarm_id}: {reply.get('state', 'done')} (command {answer.get('id')}, recorded as seq {answer.get('seq')})")
    if not answer.get("ok"):
        if not args.json:
            print(f"headframe alarms {args.action}: {answer.get('error')}", file=sys.stderr)
        return 1
    return 0
