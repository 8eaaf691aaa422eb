"""``headframe web-password FILE``: write the technician page's password hash (never the password)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from agent.web.passwords import MIN_LENGTH, write_hash_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("web-password", help="set the technician page's password (writes its scrypt hash to FILE, mode 0600)")
    p.add_argument("file", type=Path, help="the file named by web.password_file")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input (for Ansible)")
    p.set_defaults(func=cmd_web_password)


def cmd_web_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ; nothing written", file=sys.stderr)
            return 1
    if len(password) < MIN_LENGTH:
        print(f"a password of at least {MIN_LENGTH} characters, please; nothing written", file=sys.stderr)
        return 1
    try:
        write_hash_file(args.file, password)
    except OSError as exc:
        print(f"{args.file}: cannot write it ({exc.strerror or exc})", file=sys.stderr)
        return 1
    print(
        f"{args.file}: password hash written (mode {oct(os.stat(args.file).st_mode & 0o777)}); "
        "the page uses it at the next login, no restart needed"
    )
    return 0
