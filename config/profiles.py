"""Device profiles: register maps of common meters and PLCs, kept as YAML data files.

The files live in ``drivers/profiles/`` (package data). They are read here, as data, so
that config validation can check profile names and points without importing drivers code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from config.drivers import PointSettings
from config.types import StrictModel

PROFILE_DIR = Path(__file__).resolve().parents[1] / "drivers" / "profiles"


class Profile(StrictModel):
    """A device's published map; ``source`` cites the document it was taken from."""

    name: str
    title: str
    source: str
    protocol: Literal["modbus", "dlt645"]
    notes: str = ""
    max_registers: int | None = Field(default=None, ge=1, le=125)
    points: list[PointSettings]


def load_profile(path: Path) -> Profile:
    from config.loader import parse_yaml, validate_tree

    return validate_tree(Profile, parse_yaml(path.read_text(encoding="utf-8"), str(path)), str(path))


@cache
def known_profiles() -> dict[str, Profile]:
    """All shipped profiles by name (file stem)."""
    return {p.stem: load_profile(p) for p in sorted(PROFILE_DIR.glob("*.yaml"))}
