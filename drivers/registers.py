"""What register-addressed drivers share (Modbus TCP and RTU; S7 would map onto it too):
planning points into block reads, and decoding a block's words into point values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from config.drivers import ModbusRtuDevice, ModbusTcpDevice, PointSettings, RegisterTable
from drivers.codec import DecodeError, decode
from drivers.planner import Barrier, Block, plan
from drivers.protocol import BadValue, Values


def decode_block(block: Block, words: list[int]) -> Values:
    """Point values out of one block's registers (or bits as 0/1)."""
    values: Values = {}
    start = block.start
    if block.table is not None and block.table.is_bits:
        for p in block.points:
            values[p.name] = bool(words[p.address - start])
        return values
    for p in block.points:
        offset = p.address - start
        try:
            values[p.name] = decode(p, words[offset : offset + p.registers])
        except DecodeError as exc:
            values[p.name] = BadValue(str(exc))
    return values


class RegisterDriver(ABC):
    """A ``Driver`` whose device exposes numbered registers in the four Modbus tables."""

    def __init__(self, dev: ModbusTcpDevice | ModbusRtuDevice) -> None:
        self.dev = dev

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        d = self.dev
        return plan(points, max_registers=d.max_registers, max_bits=d.max_bits, gap_fill=d.gap_fill, barriers=barriers)

    async def read(self, block: Block) -> Values:
        assert block.table is not None, "register drivers plan table blocks"
        return decode_block(block, await self.read_registers(block.table, block.start, block.count))

    @abstractmethod
    async def read_registers(self, table: RegisterTable, start: int, count: int) -> list[int]:
        """``count`` registers (or bits as 0/1) from ``start``; raises DriverError."""

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None
