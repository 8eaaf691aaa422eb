"""The per-gateway secret that keys the integrity chain (HMAC-SHA256).

The key is the file's content with surrounding whitespace stripped. Without a configured
``gateway.chain_key_file`` the agent uses ``<buffer dir>/chain.key`` and creates it on first
start (32 random bytes, hex-encoded, mode 0600). A configured key that is missing, unreadable
or empty is an error: the agent never falls back to an unkeyed chain silently. The key is
never logged and never put in a record or in health.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULT_NAME = "chain.key"


class ChainKeyError(RuntimeError):
    """The chain key cannot be used; the message names the file and the fix."""


def default_key_path(buffer_path: Path) -> Path:
    return buffer_path.parent / DEFAULT_NAME


def read_key(path: Path, *, configured: bool) -> bytes:
    """The key in ``path``; ChainKeyError naming the file and the fix when it is unusable."""
    where = "gateway.chain_key_file" if configured else "the default chain key (gateway.chain_key_file unset)"
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise ChainKeyError(f"{where}: {path} does not exist; create it (e.g. `openssl rand -hex 32 > {path}`, "
                            "owned by the service user, mode 0600) or restore the gateway's key from backup") from None
    except OSError as exc:
        raise ChainKeyError(f"{where}: {path} is not readable ({exc.strerror or exc}); give the service user "
                            "read access (owner headframe, mode 0600)") from None
    if not key:
        raise ChainKeyError(f"{where}: {path} is empty; write the gateway's secret into it "
                            f"(e.g. `openssl rand -hex 32 > {path}`)")
    return key


def create_key(path: Path) -> bool:
    """Create ``path`` with a fresh random key unless it exists; True if it was created.

    The key is written and fsynced under a temporary name, then linked into place: ``link``
    fails if the key exists (like O_EXCL), and a kill mid-write can never leave an empty key
    that would stop the next start.
    """
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return created


def load_chain_key(configured: Path | None, buffer_path: Path) -> tuple[bytes, Path, bool]:
    """(key, its path, created now): the configured key, or the default one (created if absent)."""
    if configured is not None:
        return read_key(configured, configured=True), configured, False
    path = default_key_path(buffer_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        created = create_key(path)
    except OSError as exc:
        raise ChainKeyError(f"cannot create the chain key {path} ({exc.strerror or exc}); make {path.parent} "
                            "writable for the service user, or set gateway.chain_key_file") from None
    return read_key(path, configured=False), path, created
