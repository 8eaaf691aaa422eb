"""The DL/T 645-2007 driver: a meter on a shared serial bus, read point by point by data identifier."""

from __future__ import annotations

import time
from collections.abc import Sequence

from config.drivers import Dlt645Device, PointSettings
from drivers import dlt645
from drivers.bus import Line, Receiver, SerialBus
from drivers.dlt645_ids import decode_value
from drivers.errors import BadFrame, DeviceException, Timeout
from drivers.planner import Barrier, Block, plan_singly
from drivers.protocol import Values

NO_ANSWER = "timeout: no answer — check wiring, baud rate (DL/T 645 default 2400 8E1), address"


def receive_frame(want: tuple[int, ...]) -> Receiver[dlt645.Frame]:
    """Read until a frame with one of the ``want`` control codes (or an error reply) arrives."""

    def receive(line: Line, deadline: float) -> dlt645.Frame:
        decoder = dlt645.Decoder()
        try:
            while time.monotonic() < deadline:
                for frame in decoder.feed(line.read_available()):
                    if frame.control in want or frame.control == dlt645.C_READ_ERR:
                        return frame
            if line.received:
                raise BadFrame()
            raise Timeout(NO_ANSWER)
        finally:
            # what the decoder skipped, and a corrupted frame still waiting for its end, is noise
            line.noise += decoder.noise + decoder.pending_noise()

    return receive


def _error_reply(frame: dlt645.Frame) -> DeviceException:
    code = frame.data[0] if frame.data else 0
    return DeviceException(dlt645.error_text(code), code)


async def read_value(bus: SerialBus, address: str, di: str, timeout: float) -> float:
    """One data identifier of one meter, as a number in the identifier's unit."""
    frame = await bus.transact(
        dlt645.read_request(address, di), receive_frame((dlt645.C_READ_OK, dlt645.C_READ_OK_MORE)), timeout
    )
    return interpret_reply(frame, address, di)


def interpret_reply(frame: dlt645.Frame, address: str, di: str) -> float:
    """The value a meter's answer carries; raises a DriverError subclass for anything else."""
    if frame.control == dlt645.C_READ_ERR:
        raise _error_reply(frame)
    if frame.address != address:
        raise BadFrame(f"garbage: answer from meter {frame.address}, asked {address}")
    return decode_value(di, frame.data)


async def discover(bus: SerialBus, timeout: float) -> str:
    """The address of the (single) meter on the line, by the broadcast read-address command.

    Raises DriverError subclasses only (a port that fails mid-read is ``PortUnavailable``).
    """
    frame = await bus.transact(dlt645.read_address_request(), receive_frame((dlt645.C_ADDRESS_OK,)), timeout)
    if frame.control != dlt645.C_ADDRESS_OK:
        raise _error_reply(frame)
    return frame.address


class Dlt645Driver:
    """A DL/T 645 meter: one request per point (data identifier), scale and offset applied."""

    def __init__(self, dev: Dlt645Device, bus: SerialBus) -> None:
        self.dev, self.bus = dev, bus

    async def connect(self) -> None:
        await self.bus.ensure_open()

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        return plan_singly(points)

    async def read(self, block: Block) -> Values:
        (point,) = block.points
        value = await read_value(self.bus, self.dev.address, point.di or "", self.dev.timeout)
        return {point.name: value * point.scale + point.offset}

    async def close(self) -> None:
        return None
