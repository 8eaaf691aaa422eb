"""``headframe probe s7``: read a few S7 addresses once, through the agent's own driver.

The addresses go through the same settings model as a config file (same syntax, same
messages), and the reads through ``S7Driver`` (coalesced, same fault words), so what the probe
shows is what the agent will see. snap7 is loaded only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from pydantic import ValidationError

from config.drivers import S7Device
from drivers.errors import DriverError
from drivers.protocol import BadValue
from drivers.registry import make_driver


def register(psub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = psub.add_parser("s7", help="read Siemens S7 addresses once (needs the 's7' extra)")
    p.add_argument("target", help="HOST[:PORT] of the CPU (port 102 by default)")
    p.add_argument("--rack", type=int, default=0)
    p.add_argument("--slot", type=int, default=1, help="S7-1200/1500: 1 (default); S7-300: 2")
    p.add_argument("--tsap", help="remote TSAP instead of rack/slot, e.g. 03.01")
    p.add_argument(
        "--read", action="append", required=True, help="ADDRESS[:TYPE], e.g. DB10.DBD8:REAL, M4.2, IW64:INT (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=2.0)
    p.set_defaults(func=cmd_probe_s7)


def _device(args: argparse.Namespace) -> S7Device:
    host, _, port = args.target.partition(":")
    points: list[dict[str, Any]] = []
    for i, spec in enumerate(args.read):
        address, _, type_name = spec.partition(":")
        points.append({"name": f"p{i}", "address": address} | ({"type": type_name} if type_name else {}))
    where: dict[str, Any] = {"tsap": args.tsap} if args.tsap else {"rack": args.rack, "slot": args.slot}
    return S7Device.model_validate(
        {"id": "probe", "protocol": "s7", "host": host, "port": int(port or 102), "timeout": args.timeout, "points": points}
        | where
    )


def cmd_probe_s7(args: argparse.Namespace) -> int:
    try:
        dev = _device(args)
    except (ValidationError, ValueError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
        for err in errors:
            loc = err["loc"]
            what = args.read[int(loc[1])] if len(loc) > 1 and loc[0] == "points" else args.target
            print(f"error: {what}: {str(err['msg']).removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    driver = make_driver(dev, {})

    async def go() -> int:
        bad = 0
        try:
            for block in driver.plan(dev.points, frozenset()):
                try:
                    values = await driver.read(block)
                except DriverError as exc:
                    if exc.silent:  # no connection: nothing else will answer either
                        raise
                    values = {p.name: BadValue(exc.reason) for p in block.points}
                for p in sorted(dev.points, key=lambda q: int(q.name[1:])):
                    if p.name not in values:
                        continue
                    value = values[p.name]
                    if isinstance(value, BadValue):
                        bad += 1
                        print(f"{p.s7.text}: {value.reason}")
                    else:
                        print(f"{p.s7.text} {p.s7.type} = {value!r}")
        finally:
            await driver.close()
        return 1 if bad else 0

    try:
        return asyncio.run(go())
    except DriverError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
