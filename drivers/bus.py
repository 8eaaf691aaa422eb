"""The serial bus scheduler: one port, one request at a time, shared by every serial protocol.

Modbus RTU and DL/T 645 drivers (and any later serial protocol) talk to their devices only
through ``SerialBus.transact(request, receive, timeout)``: the bus owns the port, the FIFO
lock, the blocking-I/O thread, reopening after errors, turnaround time and byte counters;
the driver owns its framing (``receive`` runs on the bus thread and reads one answer).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import serial

from config.drivers import BusSettings
from drivers.errors import PortUnavailable

log = logging.getLogger("headframe.drivers")
T = TypeVar("T")

#: pyserial read granularity. The port's timeout is set once at open: changing it later
#: re-applies termios settings, which some drivers (ptys with parity) reject.
READ_SLICE = 0.02


def port_error_text(port: str, exc: BaseException) -> str:
    """A serial port problem in words a technician can act on (by errno; pyserial's own
    exceptions carry the OS error only in their text, so that is the fallback)."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.ENOENT or "No such file" in text:
        return f"serial port {port} does not exist: check the adapter/cable, and the name (ls /dev/serial/by-id/)"
    if err == errno.EACCES or "Permission denied" in text:
        return (
            f"serial port {port}: permission denied — add the service user to the 'dialout' group "
            "(usermod -aG dialout USER) and log in again"
        )
    if err == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        return f"serial port {port} is busy: another program has it open (find it with: fuser {port})"
    if "disconnected" in text or err in (errno.EIO, errno.ENXIO, errno.ENODEV):
        return f"serial port {port} stopped working (adapter unplugged or failing): check the USB adapter and cable"
    return f"serial port {port}: {text}"


class Line:
    """The open port as a receiver sees it: reads that count the bytes that came back."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.received = 0
        #: bytes the receiver's framing threw away as line noise (set by receivers that resynchronise)
        self.noise = 0

    def read(self, n: int) -> bytes:
        data = self.port.read(n)
        self.received += len(data)
        return bytes(data)

    def read_until(self, n: int, deadline: float) -> bytes:
        """Up to ``n`` bytes, or fewer when ``deadline`` (monotonic) passes."""
        buf = bytearray()
        while len(buf) < n and time.monotonic() < deadline:
            buf += self.read(n - len(buf))
        return bytes(buf)

    def read_available(self) -> bytes:
        """Whatever is waiting (at least one byte, or nothing after one read slice)."""
        return self.read(max(1, self.port.in_waiting))


#: a driver's framing: read one answer from the line before the deadline (monotonic)
Receiver = Callable[[Line, float], T]


class SerialBus:
    """Owns one serial port for all its devices: one request at a time, in FIFO order.

    Blocking pyserial calls run on the bus's own thread, so the event loop never waits on
    the line. Transactions of different protocols interleave under the same lock.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bus-{settings.name}")
        self.port: serial.Serial | None = None
        self.open_error: str | None = None
        self.bytes_out = 0
        self.bytes_in = 0
        #: received bytes that were not part of any frame (line noise, corrupted frames)
        self.bytes_noise = 0

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> None:
        s = self.settings
        try:
            try:
                self.port = serial.Serial(
                    s.port,
                    baudrate=s.baudrate,
                    parity=s.parity,
                    stopbits=s.stopbits,
                    bytesize=s.bytesize,
                    timeout=READ_SLICE,
                    exclusive=True,
                )
            except termios.error:
                # Linux ptys (test rigs, some virtual ports) refuse a parity-only termios change;
                # going through another baud rate first is accepted. Real UARTs never get here.
                port = serial.Serial(
                    s.port,
                    baudrate=1200 if s.baudrate != 1200 else 2400,
                    parity=s.parity,
                    stopbits=s.stopbits,
                    bytesize=s.bytesize,
                    timeout=READ_SLICE,
                    exclusive=True,
                )
                port.baudrate = s.baudrate
                self.port = port
            self.open_error = None
        except (serial.SerialException, OSError, termios.error) as exc:
            self.port = None
            self.open_error = port_error_text(s.port, exc)
            raise PortUnavailable(self.open_error) from None

    async def ensure_open(self) -> None:
        if self.port is None:
            await self._call(self._open)

    def _exchange(self, request: bytes, receive: Receiver[T], timeout: float) -> T:
        """Drop stale input (a late answer to an earlier request), send, and read one answer."""
        port = self.port
        assert port is not None
        port.reset_input_buffer()
        port.write(request)
        port.flush()
        self.bytes_out += len(request)
        line = Line(port)
        try:
            return receive(line, time.monotonic() + timeout)
        finally:
            self.bytes_in += line.received
            self.bytes_noise += line.noise
            time.sleep(self.settings.inter_frame)

    async def transact(self, request: bytes, receive: Receiver[T], timeout: float) -> T:
        """One request/answer on the line, in turn with every other device on this bus."""
        async with self.lock:
            await self.ensure_open()
            try:
                return await self._call(self._exchange, request, receive, timeout)
            except (serial.SerialException, OSError, termios.error) as exc:
                text = port_error_text(self.settings.port, exc)
                log.error("bus %s: %s; reopening", self.settings.name, text)
                await self.close()
                raise PortUnavailable(text) from None

    async def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            await self._call(port.close)
