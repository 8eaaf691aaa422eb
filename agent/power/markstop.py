"""``headframe mark-stopped``: systemd's ExecStopPost= records how the service ended.

systemd passes ``$SERVICE_RESULT`` (success, exit-code, signal, core-dump, watchdog, timeout,
...), ``$EXIT_CODE`` (exited, killed, dumped) and ``$EXIT_STATUS`` (a number or a signal name)
to ExecStopPost. Written into the run state of the run that just ended, the next start can
say "watchdog" or "crash" with systemd's word for it instead of inferring it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.power.boot import iso, read_boot_id
from agent.power.runstate import RUN_STATE_NAME, RunState, read_json


def mark_stopped(state_dir: Path, result: str, exit_code: str = "", exit_status: str = "") -> str:
    """Record the service result in the run state; returns what was done (for the journal)."""
    doc = read_json(Path(state_dir) / RUN_STATE_NAME)
    if doc is None:
        return f"no run state in {state_dir}: nothing to mark (the agent never got as far as starting)"
    boot_id = read_boot_id()
    if doc.get("boot_id") not in (None, boot_id):
        return "the run state is from an earlier boot: left as it is"
    fields: dict[str, object] = {
        "service_result": result or None,
        "exit_code": exit_code or None,
        "exit_status": exit_status or None,
        "marked_at": iso(),
    }
    if result == "watchdog" and not doc.get("clean"):
        fields["stopping_reason"] = "watchdog"
    RunState(state_dir, doc).update(**fields)
    return f"marked: service result {result or '(none)'}, exit {exit_code or '-'}/{exit_status or '-'}"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mark-stopped", help="record systemd's service result for the next start (ExecStopPost=)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", type=Path, help="the agent's config (its buffer directory holds the run state)")
    where.add_argument("--state-dir", type=Path, help="the directory holding headframe-run.json")
    p.add_argument("--result", default="", help="$SERVICE_RESULT")
    p.add_argument("--exit-code", default="", help="$EXIT_CODE")
    p.add_argument("--exit-status", default="", help="$EXIT_STATUS")
    p.set_defaults(func=cmd_mark_stopped)


def cmd_mark_stopped(args: argparse.Namespace) -> int:
    state_dir = args.state_dir
    if state_dir is None:
        from config import load_or_report

        settings = load_or_report(args.config)
        if settings is None:
            return 1
        state_dir = settings.buffer.path.parent
    try:
        print(mark_stopped(state_dir, args.result, args.exit_code, args.exit_status))
    except OSError as exc:
        print(f"mark-stopped: cannot write the run state in {state_dir}: {exc}", file=sys.stderr)
        return 1
    return 0
