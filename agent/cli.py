"""The ``headframe`` command: one entry point, subcommands registered by each package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from agent import alarms_cli, cli_spine, permit_cli
    from agent.fleet import cli as fleet_cli
    from agent.power import markstop
    from agent.verify import cli as verify_cli
    from agent.web import cli as web_cli
    from drivers import cli as drivers_cli
    from vision import cli as vision_cli

    parser = argparse.ArgumentParser(prog="headframe", description="Headframe edge gateway agent")
    parser.add_argument(
        "--lang",
        choices=["zh", "en"],
        help="language of the technician commands' messages (else HEADFRAME_LANG, else LANG/LC_ALL zh* → zh, else en)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_spine.register(sub)
    drivers_cli.register(sub)
    vision_cli.register(sub)
    fleet_cli.register(sub)
    markstop.register(sub)
    verify_cli.register(sub)
    alarms_cli.register(sub)
    web_cli.register(sub)
    permit_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; its return value is the exit code."""
    if list(sys.argv[1:] if argv is None else argv)[:1] == ["run"]:
        from agent.earlysignal import remember_early_signals

        remember_early_signals()  # before the slow imports: a SIGHUP or SIGTERM now must not end the agent
    from agent.logsetup import quiet_third_party

    quiet_third_party()  # technician commands print our words, not a library's frame dumps
    parser = build_parser()
    args = parser.parse_args(_choose_language(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def _choose_language(argv: list[str]) -> list[str]:
    """Take ``--lang X`` from anywhere on the line (``headframe check c.yaml --lang zh`` too) and
    set the messages' language; ``run`` keeps English (its output goes to the journal)."""
    import os

    from config.lang import pick, set_current

    flag, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--lang" and i + 1 < len(argv) and argv[i + 1] in ("zh", "en"):
            flag, i = argv[i + 1], i + 2
            continue
        if arg in ("--lang=zh", "--lang=en"):
            flag = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    if rest[:1] != ["run"]:
        set_current(pick(flag, os.environ))
    return rest


if __name__ == "__main__":
    sys.exit(main())
