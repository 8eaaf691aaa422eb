"""The config key map is held packed: the same answers as the dict, a fraction of the memory."""

from __future__ import annotations

import sys

from agent.continuity.config_audit import changed_keys
from agent.continuity.keymap import KeyMap, unpacked


def big(n: int, changed: int | None = None) -> dict[str, str]:
    return {f"devices[d{i // 100}].points[r{i % 100}].scale": ("ffff" if i == changed else f"{i % 7:016x}") for i in range(n)}


def test_packed_map_equals_its_dict_and_compares_like_it() -> None:
    keys = big(20_000)
    packed = KeyMap(keys)
    assert packed == keys and packed == KeyMap(keys) and len(packed) == 20_000 and unpacked(packed) == keys
    assert KeyMap() == {} and not KeyMap() and KeyMap({}) == KeyMap()
    assert changed_keys(packed, KeyMap(big(20_000, changed=123))) == ["devices[d1].points[r23].scale"]
    assert changed_keys(packed, keys) == []


def test_packed_map_is_small() -> None:
    keys = big(20_000)
    as_dict = sys.getsizeof(keys) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in keys.items())
    packed = KeyMap(keys)
    assert sys.getsizeof(packed._packed) * 10 < as_dict, (sys.getsizeof(packed._packed), as_dict)
