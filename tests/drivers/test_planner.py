"""The request planner uses the fewest requests; proven against a DP optimum."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from config.drivers import PointSettings
from config.profiles import known_profiles
from drivers.planner import optimum_count as optimum
from drivers.planner import plan, split


def pts(*spec: tuple[int, str]) -> list[PointSettings]:
    return [PointSettings(name=f"p{i}", address=a, type=t) for i, (a, t) in enumerate(spec)]


def test_adjacent_points_one_request() -> None:
    blocks = plan(pts((0, "float32"), (2, "float32"), (4, "uint16")))
    assert [(b.start, b.count) for b in blocks] == [(0, 5)]


def test_gap_fill_bridges_small_gaps_only() -> None:
    points = pts((0, "uint16"), (5, "uint16"), (30, "uint16"))
    assert [(b.start, b.count) for b in plan(points, gap_fill=4)] == [(0, 6), (30, 1)]
    assert [(b.start, b.count) for b in plan(points, gap_fill=3)] == [(0, 1), (5, 1), (30, 1)]
    assert len(plan(points, gap_fill=30)) == 1


def test_max_registers_respected_and_values_never_split() -> None:
    points = pts(*[(i * 2, "float32") for i in range(100)])  # 200 registers
    blocks = plan(points, max_registers=125)
    assert [(b.start, b.count) for b in blocks] == [(0, 124), (124, 76)]
    assert all(b.count <= 125 for b in blocks)
    assert len(plan(points, max_registers=10)) == 20


def test_tables_never_mix() -> None:
    points = [
        PointSettings(name="a", table="holding", address=0),
        PointSettings(name="b", table="input", address=1),
        PointSettings(name="c", table="coil", address=0, type="bool"),
    ]
    assert sorted(b.table for b in plan(points)) == ["coil", "holding", "input"]


def test_split_learns_a_barrier() -> None:
    points = pts((0, "uint16"), (1, "uint16"), (10, "uint16"), (11, "uint16"))
    (block,) = plan(points, gap_fill=10)
    halves, barrier = split(block)
    assert [(b.start, b.count) for b in halves] == [(0, 2), (10, 2)]
    assert barrier == ("holding", 10)
    assert len(plan(points, gap_fill=10, barriers=frozenset({barrier}))) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(["uint16", "float32", "float64"])),
        min_size=1,
        max_size=40,
        unique_by=lambda t: t[0],
    ),
    st.integers(4, 125),
    st.integers(0, 20),
)
def test_greedy_plan_is_optimal(spec, limit, gap) -> None:
    points = pts(*spec)
    sizes = [(p.address, p.registers) for p in points]
    blocks = plan(points, max_registers=limit, gap_fill=gap)
    assert len(blocks) == optimum(sizes, limit, gap)
    covered = {p.name for b in blocks for p in b.points}
    assert covered == {p.name for p in points}
    for b in blocks:
        assert b.count <= max(limit, max(p.registers for p in b.points))
        assert all(b.start <= p.address and p.address + p.registers <= b.end for p in b.points)


def test_profiles_plan_to_their_optimum() -> None:
    for name, profile in known_profiles().items():
        if profile.protocol != "modbus":
            continue
        points = profile.points
        blocks = plan(points, max_registers=profile.max_registers or 125, gap_fill=8)
        assert len(blocks) == optimum([(p.address, p.registers) for p in points], profile.max_registers or 125, 8), name
