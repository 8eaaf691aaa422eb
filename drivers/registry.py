"""Which driver class serves which device settings: the one place protocols are told apart.

A new protocol adds its settings model to ``config.drivers.DeviceSettings`` and a case here;
``assert_never`` makes a type checker point at this function when a case is missing.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import assert_never, cast

from config.drivers import DeviceSettings, Dlt645Device, ModbusRtuDevice, ModbusTcpDevice, OpcUaDevice
from drivers.bus import SerialBus
from drivers.dlt645_driver import Dlt645Driver
from drivers.modbus_rtu import ModbusRtuDriver
from drivers.modbus_tcp import ModbusTcpDriver
from drivers.protocol import Driver


def _opcua() -> ModuleType:
    """``drivers.opcua``, loaded by name at use: a gateway without OPC UA devices never loads
    asyncua (the optional extra ``headframe[opcua]``)."""
    try:
        return importlib.import_module("drivers.opcua")
    except ModuleNotFoundError as exc:
        if exc.name != "asyncua":
            raise
        raise RuntimeError("opcua devices need the asyncua library: pip install 'headframe[opcua]'") from None


def make_driver(dev: DeviceSettings, buses: Mapping[str, SerialBus], connect_slots: asyncio.Semaphore | None = None) -> Driver:
    """The driver for ``dev``; serial devices get the bus they share with the others on it,
    TCP devices the agent's bound on connects in flight (``connect_slots``)."""
    if isinstance(dev, ModbusTcpDevice):
        return ModbusTcpDriver(dev, connect_slots)
    if isinstance(dev, ModbusRtuDevice):
        return ModbusRtuDriver(dev, buses[dev.bus])
    if isinstance(dev, Dlt645Device):
        return Dlt645Driver(dev, buses[dev.bus])
    if isinstance(dev, OpcUaDevice):
        return cast(Driver, _opcua().OpcUaDriver(dev))
    assert_never(dev)
