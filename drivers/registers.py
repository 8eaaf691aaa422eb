"""What register-addressed drivers share (Modbus TCP and RTU; S7 would map onto it too):
planning points into block reads, and decoding a block's words into point values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from config.drivers import ModbusRtuDevice, ModbusTcpDevice, PointSettings, RegisterTable
from drivers.blockdecode import BlockDecoder
from drivers.planner import Barrier, Block, plan
from drivers.protocol import Values


class RegisterDriver(ABC):
    """A ``Driver`` whose device exposes numbered registers in the four Modbus tables."""

    def __init__(self, dev: ModbusTcpDevice | ModbusRtuDevice) -> None:
        self.dev = dev
        #: id(block) -> its decoder; a re-plan (a refused block split) makes new blocks
        self._decoders: dict[int, BlockDecoder] = {}

    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        d = self.dev
        return plan(points, max_registers=d.max_registers, max_bits=d.max_bits, gap_fill=d.gap_fill, barriers=barriers)

    async def read(self, block: Block) -> Values:
        assert block.table is not None, "register drivers plan table blocks"
        words = await self.read_registers(block.table, block.start, block.count)
        decoder = self._decoders.get(id(block))
        if decoder is None or decoder.block is not block:
            decoder = self._decoders[id(block)] = BlockDecoder(block)
        return decoder(words)

    @abstractmethod
    async def read_registers(self, table: RegisterTable, start: int, count: int) -> list[int]:
        """``count`` registers (or bits as 0/1) from ``start``; raises DriverError."""

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None
