"""The continuity state file: what the next start needs to explain the gap before it.

One small JSON document next to the buffer (``<buffer>.continuity.json``), replaced
atomically (write to a temporary file, fsync, rename, fsync the directory), so a power cut
leaves either the old or the new document, never a torn one. A JSON file rather than a
second SQLite database: the document is a few kilobytes, is rewritten whole at most once per
``continuity.state_interval``, and a technician can read it with ``cat``.

It holds no secret and no config value: config keys appear only with a hash of their value.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agent.atomicfile import atomic_write
from agent.continuity.keymap import KeyMap, unpacked

log = logging.getLogger("headframe.continuity")

SCHEMA = "headframe.continuity/1"


@dataclass
class EnergyReading:
    """A meter's energy counter as last committed (always converted to kWh)."""

    kwh: float
    ts: float
    seq: int


@dataclass
class CameraFault:
    """A tamper/lost alarm period of one camera; ``to`` is None while still raised."""

    source: str
    alarm: str
    kind: str
    start: float
    end: float | None = None


@dataclass
class ContinuityState:
    last_seq: int = 0
    last_ts: float | None = None
    #: wall-clock time of the last save (tells how stale the state is after a kill)
    saved_at: float | None = None
    energy: dict[str, EnergyReading] = field(default_factory=dict)  # "source/point" -> reading
    faults: list[CameraFault] = field(default_factory=list)
    config_hash: str | None = None
    file_hash: str | None = None
    config_keys: Mapping[str, str] = field(default_factory=KeyMap)  # dotted key -> value hash, packed
    #: a start gap not yet committed (the agent stopped before every meter answered, or before
    #: the gap record reached the disk); cleared only once the record is seen committed
    pending_gap: dict[str, Any] | None = None
    #: secret salt of the config audit hashes (hex): published hashes of a config that holds a
    #: camera password must not be open to a dictionary attack
    audit_salt: str | None = None

    def to_doc(self, keys: bool = True) -> dict[str, Any]:
        """The state as JSON; without ``keys`` the key map is left out (it goes to a side file)."""
        return {
            "schema": SCHEMA,
            "last_seq": self.last_seq,
            "last_ts": self.last_ts,
            "saved_at": self.saved_at,
            "energy": {k: [r.kwh, r.ts, r.seq] for k, r in self.energy.items()},
            "faults": [[f.source, f.alarm, f.kind, f.start, f.end] for f in self.faults],
            "config": {
                "hash": self.config_hash,
                "file_hash": self.file_hash,
                "keys": unpacked(self.config_keys) if keys else None,
            },
            "pending_gap": self.pending_gap,
            "audit_salt": self.audit_salt,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ContinuityState:
        cfg = doc.get("config") or {}
        return cls(
            last_seq=int(doc.get("last_seq") or 0),
            last_ts=doc.get("last_ts"),
            saved_at=doc.get("saved_at"),
            energy={k: EnergyReading(float(v[0]), float(v[1]), int(v[2])) for k, v in (doc.get("energy") or {}).items()},
            faults=[CameraFault(*f) for f in doc.get("faults") or []],
            config_hash=cfg.get("hash"),
            file_hash=cfg.get("file_hash"),
            config_keys=KeyMap(cfg.get("keys") or {}),
            pending_gap=doc.get("pending_gap"),
            audit_salt=doc.get("audit_salt"),
        )


class StateFile:
    """Load and atomically replace the continuity state document.

    The config key map (one hash per config key: ~150,000 entries, 8 MB of JSON for 100 devices
    x 100 points) changes only when the config does, while the state is rewritten every few
    seconds: it goes to a side file named after the config hash, written once, and the state
    names that file. Rewriting it inline every 5 s was 1.7 MB/s written to an SD card.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.problem: str | None = None  # why the last load found no usable state
        self._keys_written: str | None = None  # config hash whose key file is on disk

    def keys_path(self, config_hash: str) -> Path:
        tag = hashlib.sha256(config_hash.encode()).hexdigest()[:16]
        return self.path.with_name(f"{self.path.name}.keys-{tag}.json")

    def _read_keys(self, cfg: dict[str, Any]) -> dict[str, str]:
        """The key map the state refers to; empty (changes then go unnamed) when it is unusable."""
        if "keys" in cfg:  # inline: written before the side file existed
            return dict(cfg["keys"] or {})
        name, config_hash = cfg.get("keys_file"), cfg.get("hash")
        if not name or not config_hash:
            return {}
        try:
            doc = orjson.loads((self.path.parent / name).read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("continuity: config key map %s unusable (%s); changed keys at this start go unnamed", name, exc)
            return {}
        if doc.get("hash") != config_hash:
            return {}
        self._keys_written = config_hash
        return dict(doc.get("keys") or {})

    def _write_keys(self, state: ContinuityState) -> str:
        """Write the key map's side file once per config hash; older ones are removed."""
        assert state.config_hash is not None
        path = self.keys_path(state.config_hash)
        if self._keys_written != state.config_hash or not path.exists():
            atomic_write(path, orjson.dumps({"hash": state.config_hash, "keys": unpacked(state.config_keys)}))
            self._keys_written = state.config_hash
            for old in self.path.parent.glob(f"{self.path.name}.keys-*.json"):
                if old != path:
                    with contextlib.suppress(OSError):
                        old.unlink()
        return path.name

    def load(self) -> ContinuityState | None:
        """The saved state, or None (first start, or a file that cannot be used: said in ``problem``)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.problem = "no continuity state (first start with this buffer)"
            return None
        except OSError as exc:
            self.problem = f"continuity state {self.path} unreadable ({exc.strerror or exc})"
            log.error("%s; the gap before this start cannot be described fully", self.problem)
            return None
        try:
            doc = orjson.loads(raw)
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA}")
            state = ContinuityState.from_doc(doc)
            state.config_keys = KeyMap(self._read_keys(doc.get("config") or {}))
            return state
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            self.problem = f"continuity state {self.path} damaged ({exc})"
            log.error("%s; moved aside, starting afresh", self.problem)
            with contextlib.suppress(OSError):
                self.path.replace(self.path.with_name(self.path.name + ".damaged"))
            return None

    def save(self, state: ContinuityState) -> None:
        self.write(self.encode(state))

    def encode(self, state: ContinuityState) -> bytes:
        side = bool(state.config_keys and state.config_hash)
        doc = state.to_doc(keys=not side)
        if side:
            cfg = doc["config"]
            del cfg["keys"]
            cfg["keys_file"] = self._write_keys(state)
        return orjson.dumps(doc)

    def write(self, data: bytes) -> None:
        """Atomic replace; thread-safe, so the periodic save can fsync off the event loop."""
        with self._lock:
            self._write(data)

    def _write(self, data: bytes) -> None:
        atomic_write(self.path, data)
