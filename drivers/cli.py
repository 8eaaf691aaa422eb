"""Technician tools: ``probe``, ``scan`` and ``points``; errors say what to check."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import sys
import time
from pathlib import Path

from buffer.sink import ListSink
from config import load_or_report
from config.drivers import BusSettings, DeviceSettings, RegisterTable
from drivers import dlt645_driver, s7_probe
from drivers.bus import SerialBus
from drivers.device import DevicePoller
from drivers.dlt645_ids import FORMATS
from drivers.errors import DriverError, PortUnavailable
from drivers.messages import reason_text, say
from drivers.probe import ReadResult, RegisterRead, read_rtu, read_tcp, scan_units
from drivers.registry import make_driver
from drivers.runtime import device_points


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    probe = sub.add_parser("probe", help="read registers or a meter value once and print them")
    psub = probe.add_subparsers(dest="protocol", required=True)
    for name in ("modbus-tcp", "modbus-rtu"):
        p = psub.add_parser(name)
        p.add_argument("target", help="HOST[:PORT]" if name == "modbus-tcp" else "serial port, e.g. /dev/ttyUSB0")
        p.add_argument("--unit", type=int, default=1)
        p.add_argument("--read", required=True, help="ADDR[:COUNT], 0-based protocol address")
        p.add_argument("--table", type=RegisterTable, choices=list(RegisterTable), default=RegisterTable.HOLDING)
        p.add_argument(
            "--type", default="uint16", choices=["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
        )
        p.add_argument("--order", default="ABCD", choices=["ABCD", "CDAB", "BADC", "DCBA"])
        p.add_argument("--timeout", type=float, default=1.0)
        if name == "modbus-rtu":
            _serial_args(p, 9600, "N")
        p.set_defaults(func=cmd_probe_modbus)
    p = psub.add_parser("dlt645")
    p.add_argument("target", help="serial port")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--addr", type=_meter_address, help="12-digit meter address")
    group.add_argument("--discover", action="store_true", help="read the address by broadcast (one meter on the line)")
    p.add_argument("--id", action="append", default=[], help="data identifier, e.g. 00010000 (repeatable)")
    p.add_argument("--timeout", type=float, default=1.5)
    _serial_args(p, 2400, "E")
    p.set_defaults(func=cmd_probe_dlt645)
    s7_probe.register(psub)
    p = psub.add_parser("opcua", help="browse an OPC UA server for node ids, read nodes, save its certificate")
    p.add_argument("target", help="opc.tcp://HOST:PORT[/path] (no security), or a device id with -c")
    p.add_argument("-c", "--config", type=Path, help="take endpoint, security and login of device TARGET from this config")
    p.add_argument("--browse", metavar="NODE", help="list objects and variables under NODE (default: Objects, i=85)")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--read", metavar="NODE", action="append", default=[], help="read one node (repeatable)")
    p.add_argument("--save-cert", metavar="FILE", type=Path, help="write the server's certificate (DER) to FILE")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_probe_opcua)

    scan = sub.add_parser("scan", help="find responding Modbus RTU units over common line settings")
    ssub = scan.add_subparsers(dest="protocol", required=True)
    p = ssub.add_parser("modbus-rtu")
    p.add_argument("target", help="serial port")
    p.add_argument("--units", default="1-32", help="range of unit ids, e.g. 1-247")
    p.add_argument("--bauds", default="9600,19200,4800,2400,38400,115200")
    p.add_argument("--parities", default="N,E")
    p.add_argument("--timeout", type=float, default=0.15, help="per request")
    p.add_argument("--max-time", type=float, default=120.0, help="give up after this many seconds")
    p.add_argument("--register", type=int, default=0, help="holding register to read when probing")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("points", help="live table of a configured device's decoded values with quality")
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("device")
    p.add_argument("--once", action="store_true", help="one poll, then exit (for scripts)")
    p.set_defaults(func=cmd_points)


def _meter_address(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: the 12 digits printed on the meter (or use --discover)")
    return text


def _serial_args(p: argparse.ArgumentParser, baud: int, parity: str) -> None:
    p.add_argument("--baud", type=int, default=baud)
    p.add_argument("--parity", choices=["N", "E", "O"], default=parity)
    p.add_argument("--stopbits", type=int, choices=[1, 2], default=1)


def _parse_read(text: str) -> tuple[int, int]:
    addr, _, count = text.partition(":")
    return int(addr, 0), int(count or "1", 0)


def _bus(args: argparse.Namespace) -> SerialBus:
    return SerialBus(
        BusSettings(
            name="probe", port=args.target, baudrate=args.baud, parity=args.parity, stopbits=args.stopbits, timeout=args.timeout
        )
    )


def cmd_probe_modbus(args: argparse.Namespace) -> int:
    start, count = _parse_read(args.read)
    read = RegisterRead(args.table, start, count, args.type, args.order)

    async def go() -> ReadResult:
        if args.protocol == "modbus-tcp":
            host, _, port = args.target.partition(":")
            return await read_tcp(host, int(port or 502), args.unit, read, args.timeout)
        bus = _bus(args)
        try:
            return await read_rtu(bus, args.unit, read, args.timeout)
        finally:
            await bus.close()

    try:
        result = asyncio.run(go())
    except DriverError as exc:
        print(say("error", reason=reason_text(exc.reason)), file=sys.stderr)
        return 2
    if read.table.is_bits:
        for address, bit in result.values:
            print(f"{args.table}[{address}] = {bit}")
        return 0
    print("raw: " + " ".join(f"{r:04X}" for r in result.raw))
    for address, value in result.values:
        print(f"{args.table}[{address}] {args.type} {args.order} = {value}")
    return 0


def cmd_probe_dlt645(args: argparse.Namespace) -> int:
    ids = args.id or ["00010000"]

    async def go() -> int:
        bus = _bus(args)
        try:
            address = args.addr
            if args.discover:
                address = await dlt645_driver.discover(bus, args.timeout)
                print(say("meter_address", address=address))
            for di in ids:
                fmt = FORMATS.get(di.upper())
                try:
                    value = await dlt645_driver.read_value(bus, address, di.upper(), args.timeout)
                    print(f"{di} {fmt.name if fmt else ''} = {value} {fmt.unit if fmt else ''}".rstrip())
                except PortUnavailable:
                    raise
                except DriverError as exc:
                    print(f"{di}: {reason_text(exc.reason)}", file=sys.stderr)
            return 0
        finally:
            await bus.close()

    try:
        return asyncio.run(go())
    except DriverError as exc:
        print(say("error", reason=reason_text(exc.reason)), file=sys.stderr)
        return 2


def cmd_probe_opcua(args: argparse.Namespace) -> int:
    """In ``drivers/opcua_browse.py``, loaded by name: asyncua is an optional extra."""
    try:
        module = importlib.import_module("drivers.opcua_browse")
    except ModuleNotFoundError as exc:
        if exc.name != "asyncua":
            raise
        print("error: OPC UA needs the asyncua library: pip install 'headframe[opcua]'", file=sys.stderr)
        return 2
    return int(module.cmd_probe_opcua(args))


def _units(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def cmd_scan(args: argparse.Namespace) -> int:
    units = _units(args.units)
    combos = [(int(b), p) for b in args.bauds.split(",") for p in args.parities.split(",")]
    deadline = time.monotonic() + args.max_time
    found: list[tuple[int, str, int, str]] = []

    async def go() -> None:
        for baud, parity in combos:
            bus = SerialBus(
                BusSettings(name="scan", port=args.target, baudrate=baud, parity=parity, timeout=args.timeout, inter_frame=0.002)
            )

            def progress(n: int, unit: int, baud: int = baud, parity: str = parity) -> None:
                line = f"{baud} 8{parity}1"
                print(
                    "\r" + say("scan_progress", line=line, unit=f"{unit:3d}", n=n + 1, total=len(units)), end="", file=sys.stderr
                )

            try:
                answered, finished = await scan_units(bus, units, args.register, args.timeout, deadline, progress)
            finally:
                await bus.close()
            found.extend((f.unit, f"{baud} 8{parity}1", args.register, f.answer) for f in answered)
            if not finished:
                print("\n" + say("scan_time_bound", seconds=args.max_time), file=sys.stderr)
                return

    try:
        asyncio.run(go())
    except DriverError as exc:
        print("\n" + say("error", reason=reason_text(exc.reason)), file=sys.stderr)
        return 2
    print(file=sys.stderr)
    for unit, line, _reg, what in found:
        print(say("scan_found", unit=unit, line=line, what=say("answered") if what == "answered" else reason_text(what)))
    if not found:
        print(say("scan_none"))
        return 1
    return 0


def cmd_points(args: argparse.Namespace) -> int:
    settings = load_or_report(args.config)
    if settings is None:
        return 1
    devices = {d.id: d for d in settings.devices}
    dev: DeviceSettings | None = devices.get(args.device)
    if dev is None:
        print(
            say("no_device", device=repr(args.device), file=args.config, devices=", ".join(devices) or say("none")),
            file=sys.stderr,
        )
        return 1

    async def go() -> None:
        buses = {b.name: SerialBus(b) for b in settings.buses}
        poller = DevicePoller(dev, device_points(dev), ListSink(), make_driver(dev, buses))
        try:
            while True:
                for group in poller.groups:
                    await poller.poll(group)
                _print_table(poller)
                if args.once:
                    return
                await asyncio.sleep(min(g.interval for g in dev.groups))
        finally:
            await poller.driver.close()
            for bus in buses.values():
                await bus.close()

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
    return 0


def _print_table(poller: DevicePoller) -> None:
    error = reason_text(poller.health.last_error) if poller.health.last_error else "-"
    rows = [
        say("points_title", device=poller.dev.id, state=poller.health.state, error=error),
        f"{say('col_point'):<22}{say('col_value'):>16} {say('col_unit'):<6}{say('col_quality'):<8}{say('col_reason')}",
    ]
    for p in poller.points:
        st = poller.state[p.name]
        value = "" if st.value is None else (f"{st.value:.4g}" if isinstance(st.value, float) else str(st.value))
        rows.append(f"{p.name:<22}{value:>16} {p.unit:<6}{st.quality:<8}{reason_text(st.reason) if st.reason else ''}")
    if sys.stdout.isatty():
        print("\033[2J\033[H", end="")
    print("\n".join(rows), flush=True)
