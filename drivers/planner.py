"""Coalesce a device's points into the fewest Modbus requests.

Within one table and poll group, points sorted by address are packed greedily into blocks:
a block grows while the next point starts at most ``gap_fill`` registers after the block's
end and the block stays within ``max_registers``. For this constraint set (fixed-size items
on a line, bounded span, bounded gaps) the greedy cut is optimal: any plan's i-th block
ends no later than greedy's i-th block (exchange argument), so greedy never needs more
blocks. ``tests/drivers/test_planner.py`` checks it against a dynamic-programming optimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from config.drivers import PointSettings, RegisterTable

#: (table, address) where a block must not continue across
Barrier = tuple[RegisterTable, int]


@dataclass
class Block:
    """One read request: a table, a start address, a count, and the points it serves.

    Protocols that address each point by an identifier (DL/T 645, OPC UA) have no table:
    their blocks are single points (``plan_singly``).
    """

    table: RegisterTable | None
    start: int
    count: int
    points: list[PointSettings] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + self.count


def _span(p: PointSettings) -> int:
    return 1 if p.table.is_bits else p.registers


def plan_singly(points: Sequence[PointSettings]) -> list[Block]:
    """One request per point, for protocols that read a point by its identifier."""
    return [Block(None, 0, 1, [p]) for p in points]


def plan(
    points: Sequence[PointSettings],
    *,
    max_registers: int = 125,
    max_bits: int = 2000,
    gap_fill: int = 8,
    barriers: frozenset[Barrier] = frozenset(),
) -> list[Block]:
    """Blocks for ``points`` (all of one poll group). ``barriers`` are (table, address) pairs
    where a block must not continue across: learned from devices that answered "illegal
    data address" for a block spanning them."""
    blocks: list[Block] = []
    by_table: dict[RegisterTable, list[PointSettings]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    for table, pts in sorted(by_table.items()):
        limit = max_bits if table.is_bits else max_registers
        gap = gap_fill * 16 if table.is_bits else gap_fill
        current: Block | None = None
        for p in sorted(pts, key=lambda q: (q.address, -_span(q))):
            end = p.address + _span(p)
            if current is not None:
                fits = max(current.end, end) - current.start <= limit
                close = p.address - current.end <= gap
                blocked = (table, p.address) in barriers
                if fits and close and not blocked:
                    current.count = max(current.end, end) - current.start
                    current.points.append(p)
                    continue
            current = Block(table, p.address, _span(p), [p])
            blocks.append(current)
    return blocks


def split(block: Block) -> tuple[list[Block], Barrier | None]:
    """Halve a block that the device refused; returns the halves and the new barrier."""
    if len(block.points) < 2:
        return [block], None
    pts = sorted(block.points, key=lambda q: q.address)
    mid = len(pts) // 2
    halves = []
    for part in (pts[:mid], pts[mid:]):
        start = part[0].address
        end = max(q.address + _span(q) for q in part)
        halves.append(Block(block.table, start, end - start, part))
    if block.table is None:
        return halves, None
    return halves, (block.table, pts[mid].address)


def optimum_count(spans: list[tuple[int, int]], limit: int, gap: int) -> int:
    """Fewest blocks for (address, size) spans by dynamic programming: the reference the
    tests and the benchmark hold ``plan`` against (exponential-free, O(n²))."""
    items = tuple(sorted(spans))

    @cache
    def best(i: int) -> int:
        if i == len(items):
            return 0
        result, start, end = 10**9, items[i][0], items[i][0] + items[i][1]
        for j in range(i, len(items)):
            if j > i:
                if items[j][0] - end > gap:
                    break
                end = max(end, items[j][0] + items[j][1])
            if end - start > limit:
                break
            result = min(result, 1 + best(j + 1))
        return result

    return best(0)
