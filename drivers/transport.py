"""Transports: Modbus TCP (pymodbus, one connection per device) and the shared serial bus."""

from __future__ import annotations

import asyncio
import errno
import logging
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import serial
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from config.drivers import BusSettings
from drivers import dlt645, modbus_rtu
from drivers.dlt645_ids import decode_value
from drivers.modbus_rtu import ModbusError, exception_text

log = logging.getLogger("headframe.drivers")


class RegisterTransport(Protocol):
    async def read(self, table: str, start: int, count: int) -> list[int]: ...

    async def close(self) -> None: ...


def port_error_text(port: str, exc: Exception) -> str:
    """A serial port problem in words a technician can act on."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.ENOENT or "No such file" in text:
        return f"serial port {port} does not exist: check the adapter/cable, and the name (ls /dev/serial/by-id/)"
    if err == errno.EACCES or "Permission denied" in text:
        return (f"serial port {port}: permission denied — add the service user to the 'dialout' group "
                "(usermod -aG dialout USER) and log in again")
    if err == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        return f"serial port {port} is busy: another program has it open (find it with: fuser {port})"
    return f"serial port {port}: {text}"


class TcpTransport:
    """One pymodbus TCP connection per device (a PLC may limit its connection count)."""

    def __init__(self, host: str, port: int, unit: int, timeout: float) -> None:
        self.host, self.port, self.unit, self.timeout = host, port, unit, timeout
        self._client: AsyncModbusTcpClient | None = None

    @property
    def client(self) -> AsyncModbusTcpClient:
        """Created on first use, inside the running loop (pymodbus binds to it)."""
        if self._client is None:
            self._client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout, retries=0,
                                                reconnect_delay=0)
        return self._client

    async def read(self, table: str, start: int, count: int) -> list[int]:
        if not self.client.connected:
            try:
                ok = await asyncio.wait_for(self.client.connect(), timeout=self.timeout + 0.5)
            except (TimeoutError, OSError, ConnectionException) as exc:
                raise ModbusError(f"cannot connect to {self.host}:{self.port} ({exc or 'timeout'})") from None
            if not ok:
                raise ModbusError(f"cannot connect to {self.host}:{self.port} (refused or unreachable)")
        call = {"holding": self.client.read_holding_registers, "input": self.client.read_input_registers,
                "coil": self.client.read_coils, "discrete": self.client.read_discrete_inputs}[table]
        try:
            result = await asyncio.wait_for(call(start, count=count, device_id=self.unit), timeout=self.timeout + 0.5)
        except (TimeoutError, ModbusIOException):
            self.client.close()
            raise ModbusError("timeout: no answer — check the address, port and unit id") from None
        except (ConnectionException, OSError) as exc:
            self.client.close()
            raise ModbusError(f"connection lost ({exc})") from None
        except ModbusException as exc:
            self.client.close()
            raise ModbusError(f"garbage: {exc}") from None
        if result.isError():
            code = getattr(result, "exception_code", 0)
            raise ModbusError(exception_text(code), code)
        if table in ("coil", "discrete"):
            return [int(b) for b in result.bits[:count]]
        if len(result.registers) != count:
            raise ModbusError(f"garbage: {len(result.registers)} registers in answer, asked for {count}")
        return list(result.registers)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()


#: pyserial read granularity. The port's timeout is set once at open: changing it later
#: re-applies termios settings, which some drivers (ptys with parity) reject.
READ_SLICE = 0.02


def _read_until(port: serial.Serial, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n and time.monotonic() < deadline:
        buf += port.read(n - len(buf))
    return bytes(buf)


class SerialBus:
    """Owns one serial port for all its devices: one request at a time, in FIFO order.

    Blocking pyserial calls run on the bus's own thread, so the event loop never waits on
    the line. Modbus RTU and DL/T 645 transactions interleave under the same lock.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bus-{settings.name}")
        self.port: serial.Serial | None = None
        self.open_error: str | None = None
        self.bytes_out = 0
        self.bytes_in = 0

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> None:
        s = self.settings
        try:
            try:
                self.port = serial.Serial(s.port, baudrate=s.baudrate, parity=s.parity, stopbits=s.stopbits,
                                          bytesize=s.bytesize, timeout=READ_SLICE, exclusive=True)
            except termios.error:
                # Linux ptys (test rigs, some virtual ports) refuse a parity-only termios change;
                # going through another baud rate first is accepted. Real UARTs never get here.
                port = serial.Serial(s.port, baudrate=1200 if s.baudrate != 1200 else 2400, parity=s.parity,
                                     stopbits=s.stopbits, bytesize=s.bytesize, timeout=READ_SLICE, exclusive=True)
                port.baudrate = s.baudrate
                self.port = port
            self.open_error = None
        except (serial.SerialException, OSError, termios.error) as exc:
            self.port = None
            self.open_error = port_error_text(s.port, exc)
            raise ModbusError(self.open_error) from None

    async def ensure_open(self) -> None:
        if self.port is None:
            await self._call(self._open)

    def _send(self, request: bytes) -> serial.Serial:
        """Drop stale input (a late answer to an earlier request) and put a request on the line."""
        port = self.port
        assert port is not None
        port.reset_input_buffer()
        port.write(request)
        port.flush()
        self.bytes_out += len(request)
        return port

    def _rtu(self, request: bytes, unit: int, table: str, count: int, timeout: float) -> list[int]:
        port = self._send(request)
        deadline = time.monotonic() + timeout
        head = _read_until(port, 3, deadline)  # unit, function, byte count (or exception code)
        if len(head) < 3:
            raise ModbusError("timeout: no answer — check wiring (A/B), baud rate, parity and unit id")
        # the rest of a frame follows at line speed; allow for it beyond the answer timeout
        rest = _read_until(port, 2 if head[1] & 0x80 else min(head[2], 250) + 2, max(deadline, time.monotonic() + 0.3))
        self.bytes_in += len(head) + len(rest)
        time.sleep(self.settings.inter_frame)
        return modbus_rtu.parse_read_response(head + rest, unit, table, count)

    async def read_rtu(self, unit: int, table: str, start: int, count: int, timeout: float) -> list[int]:
        async with self.lock:
            await self.ensure_open()
            try:
                return await self._call(self._rtu, modbus_rtu.read_request(unit, table, start, count), unit, table,
                                        count, timeout)
            except (serial.SerialException, OSError) as exc:
                await self._reset(exc)
                raise ModbusError(port_error_text(self.settings.port, exc)) from None

    def _dlt(self, request: bytes, timeout: float, want: tuple[int, ...]) -> dlt645.Frame:
        port = self._send(request)
        decoder = dlt645.Decoder()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = port.read(max(1, port.in_waiting))
                self.bytes_in += len(chunk)
                for frame in decoder.feed(chunk):
                    if frame.control in want or frame.control == dlt645.C_READ_ERR:
                        return frame
        finally:
            time.sleep(self.settings.inter_frame)
        if decoder.dropped:
            raise dlt645.DLT645Error("garbage: bytes on the line but no valid frame (noise, baud rate or parity)")
        raise dlt645.DLT645Error("timeout: no answer — check wiring, baud rate (DL/T 645 default 2400 8E1), address")

    async def read_dlt645(self, address: str, di: str, timeout: float) -> float:
        async with self.lock:
            await self.ensure_open()
            try:
                frame = await self._call(self._dlt, dlt645.read_request(address, di), timeout,
                                         (dlt645.C_READ_OK, dlt645.C_READ_OK_MORE))
            except (serial.SerialException, OSError) as exc:
                await self._reset(exc)
                raise dlt645.DLT645Error(port_error_text(self.settings.port, exc)) from None
        if frame.control == dlt645.C_READ_ERR:
            code = frame.data[0] if frame.data else 0
            raise dlt645.DLT645Error(dlt645.error_text(code), code)
        if frame.address != address:
            raise dlt645.DLT645Error(f"garbage: answer from meter {frame.address}, asked {address}")
        return decode_value(di, frame.data)

    async def discover_dlt645(self, timeout: float) -> str:
        """The address of the (single) meter on the line, by the broadcast read-address command."""
        async with self.lock:
            await self.ensure_open()
            frame = await self._call(self._dlt, dlt645.read_address_request(), timeout, (dlt645.C_ADDRESS_OK,))
        if frame.control != dlt645.C_ADDRESS_OK:
            raise dlt645.DLT645Error(dlt645.error_text(frame.data[0] if frame.data else 0))
        return frame.address

    async def _reset(self, exc: Exception) -> None:
        log.error("bus %s: %s; reopening", self.settings.name, port_error_text(self.settings.port, exc))
        await self.close()

    async def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            await self._call(port.close)


class RtuTransport:
    """A Modbus RTU device on a shared bus."""

    def __init__(self, bus: SerialBus, unit: int, timeout: float) -> None:
        self.bus, self.unit, self.timeout = bus, unit, timeout

    async def read(self, table: str, start: int, count: int) -> list[int]:
        return await self.bus.read_rtu(self.unit, table, start, count, self.timeout)

    async def close(self) -> None:
        return None
