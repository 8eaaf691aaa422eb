"""Settings of cameras and their analytics (owned by the vision work; placeholder shape)."""

from __future__ import annotations

from typing import Any

from config.types import Ident, StrictModel


class CameraSettings(StrictModel):
    id: Ident
    url: str


def cross_check(settings: Any) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Checks that span several entries; returns (location, found, expected) triples."""
    return []
