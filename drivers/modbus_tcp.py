"""Modbus TCP: pymodbus' async client, one connection per device (a PLC may limit its count).

pymodbus reports a discarded answer (wrong protocol id, unknown function, bytes that are no
frame) exactly like silence: a ``ModbusIOException`` after the timeout. Its packet trace hook
tells the two apart: bytes received since the request was sent mean "bad frame", none mean
"timeout".
"""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from config.drivers import ModbusTcpDevice, RegisterTable
from drivers.errors import BadFrame, Timeout, Unreachable
from drivers.modbus_rtu import device_exception
from drivers.registers import RegisterDriver

NO_ANSWER = "timeout: no answer — check the address, port and unit id"


def interpret_response(result: ModbusPDU, table: RegisterTable, count: int) -> list[int]:
    """Registers (or bits as 0/1) from a decoded answer; raises a DriverError subclass.

    pymodbus decodes the PDU; what it decoded is still the device's word: an answer with too
    few bits or registers is garbage, never a short list handed on as values.
    """
    if result.isError():
        raise device_exception(getattr(result, "exception_code", 0))
    if table.is_bits:
        bits = list(getattr(result, "bits", None) or [])
        if len(bits) < count:
            raise BadFrame(f"garbage: {len(bits)} bits in answer, asked for {count}")
        return [int(b) for b in bits[:count]]
    registers = list(getattr(result, "registers", None) or [])
    if len(registers) != count:
        raise BadFrame(f"garbage: {len(registers)} registers in answer, asked for {count}")
    return registers


class TcpLink:
    """One Modbus TCP connection to ``host:port`` for unit ``unit``.

    ``slots`` (shared by every TCP device of the agent) bounds how many connects are in flight
    at once: 100 devices start together without a SYN storm at the site's switches and TCP
    gateways, and a dead device holds one slot for one connect timeout, never the others'.
    """

    def __init__(self, host: str, port: int, unit: int, timeout: float, slots: asyncio.Semaphore | None = None) -> None:
        self.host, self.port, self.unit, self.timeout = host, port, unit, timeout
        self.slots = slots
        self._client: AsyncModbusTcpClient | None = None
        #: bytes that came back since the last request went out
        self.received = 0

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.received = 0
        else:
            self.received += len(data)
        return data

    @property
    def client(self) -> AsyncModbusTcpClient:
        """Created on first use, inside the running loop (pymodbus binds to it)."""
        if self._client is None:
            self._client = AsyncModbusTcpClient(
                self.host, port=self.port, timeout=self.timeout, retries=0, reconnect_delay=0, trace_packet=self._trace
            )
        return self._client

    async def connect(self) -> None:
        if self.client.connected:
            return
        if self.slots is None:
            return await self._connect()
        async with self.slots:
            if self.client.connected:
                return None
            return await self._connect()

    async def _connect(self) -> None:
        try:
            ok = await asyncio.wait_for(self.client.connect(), timeout=self.timeout + 0.5)
        except (TimeoutError, OSError, ConnectionException) as exc:
            raise Unreachable(f"cannot connect to {self.host}:{self.port} ({exc or 'timeout'})") from None
        if not ok:
            raise Unreachable(f"cannot connect to {self.host}:{self.port} (refused or unreachable)")

    def _no_answer(self) -> Timeout | BadFrame:
        return BadFrame() if self.received else Timeout(NO_ANSWER)

    async def read_registers(self, table: RegisterTable, start: int, count: int) -> list[int]:
        await self.connect()
        client = self.client
        call = {
            RegisterTable.HOLDING: client.read_holding_registers,
            RegisterTable.INPUT: client.read_input_registers,
            RegisterTable.COIL: client.read_coils,
            RegisterTable.DISCRETE: client.read_discrete_inputs,
        }[table]
        self.received = 0
        try:
            result = await asyncio.wait_for(call(start, count=count, device_id=self.unit), timeout=self.timeout + 0.5)
        except (TimeoutError, ModbusIOException):
            client.close()
            raise self._no_answer() from None
        except (ConnectionException, OSError) as exc:
            client.close()
            if self.received:  # pymodbus dropped the connection over an answer it could not decode
                raise BadFrame() from None
            raise Unreachable(f"connection lost ({exc})") from None
        except ModbusException:
            client.close()
            raise BadFrame() from None
        return interpret_response(result, table, count)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()


class ModbusTcpDriver(RegisterDriver):
    """A Modbus TCP device (or TCP-to-RTU gateway unit)."""

    def __init__(self, dev: ModbusTcpDevice, connect_slots: asyncio.Semaphore | None = None) -> None:
        super().__init__(dev)
        self.link = TcpLink(dev.host, dev.port, dev.unit, dev.timeout, connect_slots)

    async def connect(self) -> None:
        await self.link.connect()

    async def read_registers(self, table: RegisterTable, start: int, count: int) -> list[int]:
        return await self.link.read_registers(table, start, count)

    async def close(self) -> None:
        await self.link.close()
