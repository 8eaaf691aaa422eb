"""Settings of field buses and devices (owned by the drivers work; placeholder shape)."""

from __future__ import annotations

from typing import Any

from config.types import Ident, StrictModel


class BusSettings(StrictModel):
    name: Ident
    port: str


class DeviceSettings(StrictModel):
    id: Ident
    protocol: str


class OperatingStateSettings(StrictModel):
    enabled: bool = False


def cross_check(settings: Any) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Checks that span several entries; returns (location, found, expected) triples."""
    return []
