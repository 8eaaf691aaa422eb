"""Field types shared by all config sections: durations, byte sizes, paths, identifiers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WrapValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
    None: 1,
}


def _parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s, 5m, 2h or 7d (plain numbers are seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("a duration such as 30s, 5m, 2h or 7d (plain numbers are seconds)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration that is not negative")
    return seconds


def _parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a size such as 512MiB or 2GB (plain numbers are bytes)")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError("a size such as 512MiB or 2GB (plain numbers are bytes)")
        unit = match.group(2).lower() if match.group(2) else None
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size < 0:
        raise ValueError("a size that is not negative")
    return size


def _resolve_path(value: Any, handler: Any, info: ValidationInfo) -> Path:
    """Relative paths are taken relative to the config file, not the working directory."""
    path: Path = handler(value)
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


#: Seconds, written as ``30s``, ``5m``, ``2h``, ``7d`` or a plain number.
Duration = Annotated[float, BeforeValidator(_parse_duration)]
#: Bytes, written as ``512MiB``, ``2GB`` or a plain number.
ByteSize = Annotated[int, BeforeValidator(_parse_size)]
#: A filesystem path, relative to the config file's directory.
ConfigPath = Annotated[Path, WrapValidator(_resolve_path)]
#: An identifier safe in MQTT topics and file names.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def rejected(hint: str) -> BeforeValidator:
    """For a key that belongs to another variant of a union (e.g. ``bus`` on a TCP device):
    the problem names the key's own line and says where the key belongs, instead of the
    generic "unknown key, check the spelling" of a typo."""

    def reject(value: Any) -> None:
        raise ValueError(hint)

    return BeforeValidator(reject)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
