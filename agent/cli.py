"""The ``headframe`` command: one entry point, subcommands registered by each package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser(agent_only: bool = False) -> argparse.ArgumentParser:
    """Every subcommand; with ``agent_only`` just ``check``/``run``/``buffer``, so the running
    agent does not import the other commands' libraries (prometheus_client, numpy, the vision
    and web stacks): each stays in its RSS for the agent's whole life otherwise."""
    from agent import cli_spine

    parser = argparse.ArgumentParser(prog="headframe", description="Headframe edge gateway agent")
    parser.add_argument(
        "--lang",
        choices=["zh", "en"],
        help="language of the technician commands' messages (else HEADFRAME_LANG, else LANG/LC_ALL zh* → zh, else en)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_spine.register(sub)
    if agent_only:
        return parser
    from agent import alarms_cli, permit_cli
    from agent.fleet import cli as fleet_cli
    from agent.power import markstop
    from agent.verify import cli as verify_cli
    from agent.web import cli as web_cli
    from drivers import cli as drivers_cli
    from vision import cli as vision_cli

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
    given = list(sys.argv[1:] if argv is None else argv)
    running = _first_command(given) == "run"
    if running:
        from agent.earlysignal import remember_early_signals

        remember_early_signals()  # before the slow imports: a SIGHUP or SIGTERM now must not end the agent
    given = _choose_language(given)
    from agent.logsetup import quiet_third_party

    quiet_third_party()  # technician commands print our words, not a library's frame dumps
    parser = build_parser(agent_only=running)
    args = parser.parse_args(given)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def _first_command(argv: list[str]) -> str | None:
    """The subcommand, skipping ``--lang X`` (no imports: it runs before the early signals)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--lang":
            i += 2
        elif argv[i].startswith("--lang="):
            i += 1
        else:
            return argv[i]
    return None


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
