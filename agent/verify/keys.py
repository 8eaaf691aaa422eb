"""Chain keys bound to a gateway and a seq range: ``--key-file [GATEWAY[@FROM_SEQ]=]FILE``.

Why bound: a key tried on every record lets a leaked old key re-forge records made after a
rotation, and one gateway's key forge another gateway's stream. So each record is checked with
exactly one key: the one given for its gateway whose FROM_SEQ is the highest not above its seq.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class KeyBindingError(ValueError):
    """A key argument that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class KeySpec:
    """One key file as given: its gateway (None = bare), its first seq, the key bytes (never printed)."""

    gateway: str | None
    from_seq: int
    key: bytes
    name: str  # the file name, to say which key verified what

    def matches(self, site: str, gateway: str) -> bool:
        return self.gateway in (gateway, f"{site}/{gateway}")


def parse_arg(text: str) -> tuple[str | None, int, Path]:
    """``FILE``, ``GATEWAY=FILE`` or ``GATEWAY@FROM_SEQ=FILE``; an existing file named with '=' stays a file."""
    if "=" not in text or Path(text).exists():
        return None, 1, Path(text)
    bind, _, path = text.partition("=")
    gw, at, seq = bind.partition("@")
    if not gw or not path:
        raise KeyBindingError(f"--key-file {text!r}: write GATEWAY=FILE or GATEWAY@FROM_SEQ=FILE (e.g. gw-01@5000=new.key)")
    if at:
        if not seq.isdigit() or int(seq) < 1:
            raise KeyBindingError(
                f"--key-file {text!r}: FROM_SEQ must be a positive whole number (the first seq chained with this key)"
            )
        return gw, int(seq), Path(path)
    return gw, 1, Path(path)


class Schedule:
    """The keys of one gateway by seq: ``key_for(seq)`` is the one key that may verify that seq."""

    def __init__(self, specs: list[KeySpec]) -> None:
        self.specs = sorted(specs, key=lambda k: k.from_seq)
        self.starts = [k.from_seq for k in self.specs]

    def __bool__(self) -> bool:
        return bool(self.specs)

    def key_for(self, seq: int) -> KeySpec | None:
        i = bisect.bisect_right(self.starts, seq) - 1
        return self.specs[i] if i >= 0 else None

    def until(self, spec: KeySpec) -> int | None:
        """The last seq ``spec`` applies to (None: open-ended)."""
        i = self.specs.index(spec)
        return self.starts[i + 1] - 1 if i + 1 < len(self.specs) else None


def bind(keys: Sequence[KeySpec | bytes], gateways: list[tuple[str, str]]) -> dict[tuple[str, str], Schedule]:
    """Each gateway's key schedule; a bare key is accepted only when the input holds one gateway."""
    specs = [k if isinstance(k, KeySpec) else KeySpec(None, 1, k, "key") for k in keys]
    bare = [k for k in specs if k.gateway is None]
    if bare and len(gateways) != 1:
        names = ", ".join(f"{s}/{g}" for s, g in gateways) or "none"
        raise KeyBindingError(
            f"--key-file {bare[0].name} is not bound to a gateway, but the input holds "
            f"{len(gateways)} gateways ({names}): give each key as --key-file GATEWAY=FILE "
            "(GATEWAY@FROM_SEQ=FILE after a rotation), so one gateway's key cannot vouch for another's "
            "records"
        )
    out = {}
    for site, gw in gateways:
        mine = [k for k in specs if k.gateway is None or k.matches(site, gw)]
        seen: dict[int, str] = {}
        for k in mine:
            if k.from_seq in seen:
                raise KeyBindingError(
                    f"two keys for {site}/{gw} from seq {k.from_seq} ({seen[k.from_seq]}, {k.name}): "
                    "give the later key as GATEWAY@FROM_SEQ=FILE, FROM_SEQ being the first seq chained "
                    "with it"
                )
            seen[k.from_seq] = k.name
        out[(site, gw)] = Schedule(mine)
    return out


def unmatched(keys: Sequence[KeySpec | bytes], gateways: list[tuple[str, str]]) -> list[str]:
    """Gateway names in key bindings that match no gateway of the input (a typo leaves a gateway unkeyed)."""
    return sorted(
        {
            k.gateway
            for k in keys
            if isinstance(k, KeySpec) and k.gateway is not None and not any(k.matches(s, g) for s, g in gateways)
        }
    )
