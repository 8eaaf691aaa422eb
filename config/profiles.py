"""Device profiles: register maps of common meters and PLCs, kept as YAML data files.

The files live in ``drivers/profiles/`` (package data). They are read here, as data, so
that config validation can check profile names and points without importing drivers code.
The loader hands them to the cross-checks; this module never imports the loader.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from config.drivers import Profile
from config.yamlio import validate_text

__all__ = ["PROFILE_DIR", "Profile", "known_profiles", "load_profile"]

PROFILE_DIR = Path(__file__).resolve().parents[1] / "drivers" / "profiles"


def load_profile(path: Path) -> Profile:
    return validate_text(Profile, path.read_text(encoding="utf-8"), str(path))


@cache
def known_profiles() -> dict[str, Profile]:
    """All shipped profiles by name (file stem)."""
    return {p.stem: load_profile(p) for p in sorted(PROFILE_DIR.glob("*.yaml"))}
