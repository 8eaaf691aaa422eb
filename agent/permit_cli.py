"""``headframe permit issue|revoke``: a hot-work permit from the site, through the same path as
the platform's ``permit`` command.

It reuses the control socket of ``headframe alarms`` (agent/control.py): the agent records the
command (source ``local``, ``by`` = the OS user from the kernel) and the hot-work rule's
``command_reply`` is the answer. The checks are the rule's, so a refusal names the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.alarms_cli import DEFAULT_SOCKET, ControlError, ask, socket_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("permit", help="issue or revoke a hot-work permit on the running agent")
    p.add_argument("action", choices=["issue", "revoke"])
    p.add_argument("zone", help="the hot-work zone (rules.hotwork.zones[].name)")
    p.add_argument("--number", required=True, help="the permit number on the paper permit")
    p.add_argument("--issuer", help="who signed the permit (issue)")
    p.add_argument("--from", dest="start", help="start, ISO 8601 (no offset = site time); default now")
    p.add_argument("--until", dest="end", help="end, ISO 8601")
    p.add_argument("--duration", help="instead of --until: 2h, 90m, 5400")
    p.add_argument("-c", "--config", type=Path, help="read control.socket from this config")
    p.add_argument("--socket", type=Path, help=f"the agent's control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--id", help="command id (default: a new one); repeating an id does nothing twice")
    p.add_argument("--json", action="store_true", help="print the agent's answer as JSON")
    p.set_defaults(func=cmd_permit)


def request(args: argparse.Namespace) -> dict[str, Any]:
    """The control request; the rule, not this client, decides whether the fields are good."""
    fields = {"number": args.number}
    if args.action == "issue":
        fields |= {
            k: v for k, v in (("issuer", args.issuer), ("start", args.start), ("end", args.end), ("duration", args.duration)) if v
        }
    req: dict[str, Any] = {"op": "permit" if args.action == "issue" else "permit_revoke", "target": args.zone, "args": fields}
    if args.id:
        req["id"] = args.id
    return req


def cmd_permit(args: argparse.Namespace) -> int:
    try:
        answer = ask(socket_path(args), request(args))
    except ControlError as exc:
        print(f"headframe permit: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    if not answer.get("ok"):
        if not args.json:
            print(f"headframe permit {args.action}: {answer.get('error')}", file=sys.stderr)
        return 1
    if not args.json:
        reply = answer.get("reply", {})
        permit = reply.get("permit", {})
        print(
            f"permit {args.number} ({args.zone}): {reply.get('state')}, {permit.get('from')} .. {permit.get('until')} "
            f"(command {answer.get('id')}, recorded as seq {answer.get('seq')})"
        )
    return 0
