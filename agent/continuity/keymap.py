"""The config key map (dotted key → keyed value hash) held compressed while the agent runs.

At 100 devices x 100 points the map has ~150,000 entries: ~25 MB of Python strings and dict
slots, kept for the agent's whole life (by the continuity state and the applied config) to be
read only at a reload or the next start. Packed it is JSON through zlib (~0.8 MB), unpacked
only when two maps are compared or the side file is written.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson


class KeyMap(Mapping[str, str]):
    """A read-only key map stored packed; ``unpack()`` gives a dict (each call unpacks again)."""

    __slots__ = ("_n", "_packed")

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        keys = keys.unpack() if isinstance(keys, KeyMap) else dict(keys or {})
        self._n = len(keys)
        self._packed = zlib.compress(orjson.dumps(keys), 1) if keys else b""

    def unpack(self) -> dict[str, str]:
        if not self._packed:
            return {}
        out: dict[str, str] = orjson.loads(zlib.decompress(self._packed))
        return out

    def __getitem__(self, key: str) -> str:
        return self.unpack()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.unpack())

    def __len__(self) -> int:
        return self._n

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KeyMap):
            return self._packed == other._packed or self.unpack() == other.unpack()
        if isinstance(other, Mapping):
            return self.unpack() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KeyMap({self._n} keys, {len(self._packed)} bytes packed)"


def unpacked(keys: Mapping[str, str] | Any) -> dict[str, str]:
    """A plain dict of a key map, packed or not."""
    if isinstance(keys, KeyMap):
        return keys.unpack()
    return dict(keys or {})
