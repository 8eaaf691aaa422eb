"""pymodbus servers with a settable register image: TCP, and RTU on a serial port (pty).

Used by the tests and the HIL rig. A ``RegisterImage`` holds one unit's four tables; the
server copies the image into pymodbus' simulator memory on every request (pymodbus 3.16
``SimDevice`` action hook), so a process model can change values while the agent polls.
Reads past ``size`` answer "illegal data address", like a real device's map edge.
"""

from __future__ import annotations

import asyncio
import struct
import threading

from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

_TABLE_BY_FC = {3: "holding", 6: "holding", 16: "holding", 4: "input", 1: "coil", 5: "coil", 15: "coil", 2: "discrete"}


class RegisterImage:
    """Holding/input registers and coils/discrete inputs of one simulated unit."""

    def __init__(self, size: int = 10000) -> None:
        self.size = size
        self.tables: dict[str, list[int]] = {"holding": [0] * size, "input": [0] * size}
        self.bits: dict[str, list[bool]] = {"coil": [False] * size, "discrete": [False] * size}
        self.lock = threading.Lock()
        self.requests = 0

    def set_registers(self, table: str, address: int, values: list[int]) -> None:
        with self.lock:
            self.tables[table][address : address + len(values)] = values

    def set_float(self, table: str, address: int, value: float) -> None:
        self.set_registers(table, address, list(struct.unpack(">HH", struct.pack(">f", value))))

    def set_bits(self, table: str, address: int, values: list[bool]) -> None:
        with self.lock:
            self.bits[table][address : address + len(values)] = values

    def device(self, unit: int) -> SimDevice:
        regs = (self.size + 15) // 16
        blocks = (
            [SimData(0, count=regs, values=0, datatype=DataType.BITS)],
            [SimData(0, count=regs, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
        )
        return SimDevice(unit, simdata=blocks, use_bit_addressing=True, action=self._action)

    async def _action(
        self, func_code: int, start: int, address: int, count: int, registers: list[int], values: list[int] | list[bool] | None
    ) -> None:
        """Copy the image into pymodbus' memory for the addressed range before it answers."""
        self.requests += 1
        table = _TABLE_BY_FC.get(func_code)
        with self.lock:
            if table in self.tables:
                src = self.tables[table]
                for i in range(address, min(address + count, self.size)):
                    registers[i - start] = src[i]
            elif table in self.bits:
                bits = self.bits[table]
                first, last = address // 16, (address + count + 15) // 16
                for r in range(first, min(last + 1, len(registers) + start)):
                    word = 0
                    for b in range(16):
                        idx = r * 16 + b
                        if idx < self.size and bits[idx]:
                            word |= 1 << b
                    registers[r - start] = word
        return None


def _silent_catch_all() -> SimDevice:
    """Device id 0 receives requests for ids nobody serves; raising NoSuchIdException makes
    pymodbus stay silent (with ``ignore_missing_devices``), as an absent RS-485 unit would.
    pymodbus 3.16 otherwise answers "device failure" for unknown ids."""

    async def absent(*_args: object) -> None:
        raise NoSuchIdException("no such unit on this line")

    return SimDevice(0, simdata=[SimData(0, count=1, values=0, datatype=DataType.REGISTERS)], action=absent)


class ServerThread:
    """Runs a pymodbus server (several units on one line or port) on its own loop in a thread."""

    def __init__(
        self,
        units: dict[int, RegisterImage],
        *,
        tcp_port: int | None = None,
        serial_port: str | None = None,
        baudrate: int = 9600,
        parity: str = "N",
    ) -> None:
        self.devices = [img.device(unit) for unit, img in units.items()]
        if serial_port is not None:
            self.devices.append(_silent_catch_all())
        self.tcp_port, self.serial_port = tcp_port, serial_port
        self.baudrate, self.parity = baudrate, parity
        self._loop = asyncio.new_event_loop()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="modbus-sim")
        self._ready = threading.Event()
        self.error: Exception | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as exc:  # keep the failure visible to the test that started us
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        if self.tcp_port is not None:
            self._server = ModbusTcpServer(self.devices, address=("127.0.0.1", self.tcp_port))
        else:
            # on RS-485 a unit that is not there stays silent (no exception reply)
            self._server = ModbusSerialServer(
                self.devices,
                port=self.serial_port or "",
                baudrate=self.baudrate,
                parity=self.parity,
                bytesize=8,
                stopbits=1,
                ignore_missing_devices=True,
            )
        asyncio.get_running_loop().call_soon(self._ready.set)
        await self._server.serve_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception:
                pass
        self._thread.join(5)
