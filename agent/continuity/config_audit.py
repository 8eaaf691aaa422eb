"""Configuration audit: the hash of what is in effect and which keys changed, never values.

Two hashes: ``hash`` over the effective settings (the validated model with defaults, plus the
register maps of the profiles it uses, as canonical JSON) says whether the behaviour can have
changed; ``file_hash`` over the file's bytes says whether the file was edited at all (a
comment or an explicit default changes only this one). Changed keys are dotted paths
(``uplink.host``, ``devices[meter-1].groups[default].interval``) from comparing a per-key
hash map; the map, not the values, is what the continuity state keeps between runs.
Secrets live in files (``*_file`` keys), so a secret can only show up as its path key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agent.continuity.keymap import KeyMap, unpacked
from config.schema import Settings


def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _sha(data: bytes, salt: bytes = b"") -> str:
    """``hmac-sha256:`` keyed with the gateway's audit salt (a plain hash of a config holding a
    camera password could be reversed by guessing); plain ``sha256:`` only without a salt."""
    if salt:
        return "hmac-sha256:" + hmac.new(salt, data, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def effective_doc(settings: Settings) -> dict[str, Any]:
    """The settings in effect as plain JSON data, with the profiles' register maps resolved."""
    doc = settings.model_dump(mode="json")
    names = sorted({d.profile for d in settings.devices if d.profile})
    if names:
        from config.profiles import known_profiles

        profiles = known_profiles()
        doc["profiles"] = [profiles[n].model_dump(mode="json") for n in names if n in profiles]
    return doc


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("id", "name"):
            if isinstance(item.get(key), str | int):
                return f"[{item[key]}]"
    return f"[{index}]"


def key_hashes(doc: Any, prefix: str = "", salt: bytes = b"") -> dict[str, str]:
    """Flatten to dotted key -> hash of the value. Lists of named items are keyed by id/name
    (so inserting a device does not renumber the others); lists of plain values are one leaf.

    One output dict filled in place and one keyed hash copied per leaf: a config with 100
    devices x 100 points has ~60,000 leaves, and this runs at every start."""
    out: dict[str, str] = {}
    base = hmac.new(salt, digestmod=hashlib.sha256) if salt else None
    _flatten(doc, prefix, base, out)
    return out


def _flatten(doc: Any, prefix: str, base: hmac.HMAC | None, out: dict[str, str]) -> None:
    if isinstance(doc, dict) and doc:
        for key, value in doc.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), base, out)
    elif isinstance(doc, list) and doc and all(isinstance(i, dict) for i in doc):
        for i, item in enumerate(doc):
            _flatten(item, prefix + _label(item, i), base, out)
    elif base is not None:
        h = base.copy()
        h.update(_canon(doc))
        out[prefix] = h.hexdigest()[:16]
    else:
        out[prefix] = hashlib.sha256(_canon(doc)).hexdigest()[:16]


def _prefixes(key: str) -> list[str]:
    """``a.b[x].c`` -> ``a``, ``a.b``, ``a.b[x]``, ``a.b[x].c``."""
    out, cur = [], ""
    for ch in key:
        if ch in ".[" and cur:
            out.append(cur)
        cur += ch
    out.append(cur)
    return out


def changed_keys(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Dotted keys whose value differs; a section added or removed whole is named once.

    The prefix sets (a Python loop over every character of every key) are built only when a
    key was added or removed: an unchanged restart of a 150,000-key config costs one dict compare."""
    if old == new:
        return []
    old, new = unpacked(old), unpacked(new)
    differing = [k for k in set(old) | set(new) if old.get(k) != new.get(k)]
    changed = {k for k in differing if k in old and k in new}
    moved = [k for k in differing if not (k in old and k in new)]
    if moved:
        old_prefixes = {p for k in old for p in _prefixes(k)}
        new_prefixes = {p for k in new for p in _prefixes(k)}
        for key in moved:
            other = new_prefixes if key in old else old_prefixes
            changed.add(next((p for p in _prefixes(key) if p not in other), key))
    return sorted(changed)


@dataclass(frozen=True)
class AppliedConfig:
    """What one start or reload put into effect."""

    path: str
    mtime: float | None
    hash: str
    file_hash: str | None
    keys: Mapping[str, str]  # a KeyMap (packed) in the agent


def describe(
    settings: Settings, path: Path, salt: bytes = b"", known: tuple[str | None, Mapping[str, str]] | None = None
) -> AppliedConfig:
    """Hash the settings in effect and the file they came from (keyed with ``salt``).

    ``known`` is the (hash, key map) recorded for the config before: when the settings hash the
    same, the key map is the same and is reused (flattening 100 devices x 100 points is
    ~150,000 keyed hashes, most of a second at every start)."""
    try:
        data = path.read_bytes()
        file_hash: str | None = _sha(data, salt)
        mtime: float | None = path.stat().st_mtime
    except OSError:
        file_hash, mtime = None, None
    doc = effective_doc(settings)
    digest = _sha(_canon(doc), salt)
    if known is not None and known[0] == digest and known[1]:
        keys: Mapping[str, str] = known[1]
    else:
        keys = KeyMap(key_hashes(doc, salt=salt))
    return AppliedConfig(str(path), mtime, digest, file_hash, keys)


def applied_event(cfg: AppliedConfig, trigger: str, changed: list[str] | None, **extra: Any) -> dict[str, Any]:
    """The ``config_applied`` event payload (docs/agent.md, "Configuration audit")."""
    mtime = None
    if cfg.mtime is not None:
        mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cfg.mtime)) + f".{int(cfg.mtime * 1000) % 1000:03d}Z"
    return {
        "event": "config_applied",
        "trigger": trigger,
        "hash": cfg.hash,
        "file_hash": cfg.file_hash,
        "path": cfg.path,
        "mtime": mtime,
        "changed": changed,
        **extra,
    }
