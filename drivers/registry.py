"""Which driver class serves which device settings: the one place protocols are told apart.

A new protocol adds its settings model to ``config.drivers.DeviceSettings`` and a case here;
``assert_never`` makes a type checker point at this function when a case is missing.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import assert_never, cast

from config.drivers import (
    DeviceSettings,
    Dlt645Device,
    ModbusRtuDevice,
    ModbusTcpDevice,
    OpcUaDevice,
    PointSettings,
    S7Device,
)
from drivers.bus import SerialBus
from drivers.dlt645_driver import Dlt645Driver
from drivers.errors import Unreachable
from drivers.modbus_rtu import ModbusRtuDriver
from drivers.modbus_tcp import ModbusTcpDriver
from drivers.planner import Barrier, Block
from drivers.protocol import Driver, Values


def _opcua() -> ModuleType | None:
    """``drivers.opcua``, loaded by name at use: a gateway without OPC UA devices never loads
    asyncua (the optional extra ``headframe[opcua]``)."""
    try:
        return importlib.import_module("drivers.opcua")
    except ModuleNotFoundError as exc:
        if exc.name != "asyncua":
            raise
        return None


class Unavailable:
    """The driver of a device whose library is not installed: every read says how to install
    it; the agent's other devices run on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def connect(self) -> None:
        raise Unreachable(self.reason)

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        return [Block(None, 0, len(points), list(points))]

    async def read(self, block: Block) -> Values:
        raise Unreachable(self.reason)

    async def close(self) -> None:
        return None


def make_driver(dev: DeviceSettings, buses: Mapping[str, SerialBus], connect_slots: asyncio.Semaphore | None = None) -> Driver:
    """The driver for ``dev``; serial devices get the bus they share with the others on it,
    TCP devices the agent's bound on connects in flight (``connect_slots``)."""
    if isinstance(dev, ModbusTcpDevice):
        return ModbusTcpDriver(dev, connect_slots)
    if isinstance(dev, ModbusRtuDevice):
        return ModbusRtuDriver(dev, buses[dev.bus])
    if isinstance(dev, Dlt645Device):
        return Dlt645Driver(dev, buses[dev.bus])
    if isinstance(dev, S7Device):
        # by name: snap7 (the optional extra "s7") is imported only when an S7 PLC is configured
        return cast(Driver, importlib.import_module("drivers.s7_driver").S7Driver(dev, connect_slots))
    if isinstance(dev, OpcUaDevice):
        module = _opcua()
        if module is None:
            return Unavailable("the OPC UA library is not installed: pip install 'headframe[opcua]' (asyncua)")
        return cast(Driver, module.OpcUaDriver(dev))
    assert_never(dev)
