"""Many simulated Modbus TCP devices in one process, one asyncio loop, one port per device.

    python -m bench.modbus_farm --devices 100 [--registers 100]   # ports chosen by the kernel
    python -m bench.modbus_farm --ports 5020,5021,...

One ``pymodbus`` ``ModbusTcpServer`` per port (unit id 1), all on the same event loop: a real
TCP listener per device, as a site with 100 meters has 100 addresses. Register values change on
every request (``value = (requests + address) mod 65536`` for that device), so a poller sees
every register change on every poll; nothing is constant, nothing can be reported "unchanged".

Prints ``ready PORT,PORT,...`` on stdout once every port listens; every ``--stats`` seconds prints the total
number of requests and registers answered (``requests N R``) so a bench can tell whether the farm kept up.
A line ``freeze`` on stdin closes every server (no answers from then on) and prints the final
counts, then ``frozen``. Stops on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType


class ChangingDevice:
    """Unit 1 of one simulated device: registers change on every request."""

    def __init__(self, registers: int) -> None:
        self.registers = registers
        self.requests = 0
        self.served = 0  # registers answered, summed over requests

    def sim(self) -> SimDevice:
        blocks = (
            [SimData(0, count=1, values=0, datatype=DataType.BITS)],
            [SimData(0, count=1, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
        )
        return SimDevice(1, simdata=blocks, use_bit_addressing=True, action=self._action)

    async def _action(
        self, func_code: int, start: int, address: int, count: int, registers: list[int], values: list[int] | list[bool] | None
    ) -> None:
        self.requests += 1
        self.served += max(0, min(address + count, self.registers) - address)
        base = self.requests
        for i in range(address, min(address + count, self.registers)):
            registers[i - start] = (base + i) & 0xFFFF


async def serve(ports: list[int], registers: int, stats: float) -> None:
    devices = [ChangingDevice(registers) for _ in ports]
    servers = [ModbusTcpServer(d.sim(), address=("127.0.0.1", p)) for d, p in zip(devices, ports, strict=True)]
    for s in servers:
        await s.serve_forever(background=True)  # listens, returns
    bound = [s.transport.sockets[0].getsockname()[1] for s in servers]  # type: ignore[attr-defined]
    print("ready " + ",".join(map(str, bound)), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    freeze = asyncio.Event()

    def on_stdin() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            stop.set()
        elif b"freeze" in data:
            freeze.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(_either(stop, freeze))), timeout=stats)
        if freeze.is_set():  # answer nothing more: the counts below are final
            freeze.clear()
            for s in servers:
                await s.shutdown()
            _say(f"requests {sum(d.requests for d in devices)} {sum(d.served for d in devices)}\nfrozen")
            continue
        _say(f"requests {sum(d.requests for d in devices)} {sum(d.served for d in devices)}")
    for s in servers:
        await s.shutdown()


def _say(text: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # the bench went away first
        print(text, flush=True)


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    _done, pending = await asyncio.wait(
        [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    for t in pending:
        t.cancel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", help="comma-separated TCP ports, one device each")
    ap.add_argument("--devices", type=int, default=0, help="this many devices on ports the kernel picks")
    ap.add_argument("--registers", type=int, default=100)
    ap.add_argument("--stats", type=float, default=1.0)
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")] if args.ports else [0] * args.devices
    asyncio.run(serve(ports, args.registers, args.stats))


if __name__ == "__main__":
    main()
