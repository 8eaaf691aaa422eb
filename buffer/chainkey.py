"""The per-gateway secret that keys the integrity chain (HMAC-SHA256).

The key is the file's content with surrounding whitespace stripped. Without a configured
``gateway.chain_key_file`` the agent uses ``<buffer dir>/chain.key`` and creates it on first
start (32 random bytes, hex-encoded, mode 0600). A key that is missing, unreadable or empty
never stops the agent (a dark gateway is worse than a changed key) and never gives an unkeyed
chain: the agent chains with an emergency key it creates beside the buffer
(``chain.key.emergency-<UTC time>``) and the daemon raises an alarm. The key is never logged
and never put in a record or in health; only its fingerprint is.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_NAME = "chain.key"
EMERGENCY_PREFIX = "chain.key.emergency-"


class ChainKeyError(RuntimeError):
    """The chain key cannot be used; the message names the file and the fix, ``problem`` says
    what is wrong in a word (missing, unreadable: EACCES, empty)."""

    def __init__(self, message: str, problem: str = "unusable") -> None:
        super().__init__(message)
        self.problem = problem


def fingerprint(key: bytes) -> str:
    """Names a key in records and health without revealing it (a verifier computes the same)."""
    return hmac.new(key, b"headframe key fingerprint", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class ChainKey:
    """The key in use and why: ``problem`` is set when the wanted key was unusable and
    ``path`` is then the emergency key."""

    key: bytes = field(repr=False)
    path: Path
    created: bool
    wanted: Path
    problem: str | None = None
    message: str | None = None

    @property
    def emergency(self) -> bool:
        return self.problem is not None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def default_key_path(buffer_path: Path) -> Path:
    return buffer_path.parent / DEFAULT_NAME


def read_key(path: Path, *, configured: bool) -> bytes:
    """The key in ``path``; ChainKeyError naming the file and the fix when it is unusable."""
    where = "gateway.chain_key_file" if configured else "the default chain key (gateway.chain_key_file unset)"
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise ChainKeyError(
            f"{where}: {path} does not exist; create it (e.g. `openssl rand -hex 32 > {path}`, "
            "owned by the service user, mode 0600) or restore the gateway's key from backup",
            "missing",
        ) from None
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "error")
        raise ChainKeyError(
            f"{where}: {path} is not readable ({exc.strerror or exc}); make it a regular file the "
            "service user can read (owner headframe, mode 0600)",
            f"unreadable: {code}",
        ) from None
    if not key:
        raise ChainKeyError(
            f"{where}: {path} is empty; write the gateway's secret into it (e.g. `openssl rand -hex 32 > {path}`)", "empty"
        )
    return key


def key_warning(path: Path) -> str | None:
    """For ``headframe check``: why the key file would put the agent on an emergency key, or
    a mode that lets others read the secret; None when it is fine."""
    try:
        read_key(path, configured=True)
    except ChainKeyError as exc:
        return f"{exc} (the agent would still run, chaining with an emergency key, and raise chain_key_unusable)"
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return (
            f"gateway.chain_key_file: {path} has mode {mode:04o}: others can read the chain secret; "
            f"`chmod 0600 {path}` (the agent uses it anyway)"
        )
    return None


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


def emergency_key(buffer_path: Path, wanted: Path, cause: ChainKeyError) -> ChainKey:
    """The newest usable emergency key beside the buffer, else a new one (so restarts while
    the wanted key stays broken keep one key). ChainKeyError if none can be had."""
    folder = buffer_path.parent
    for old in sorted(folder.glob(EMERGENCY_PREFIX + "*"), reverse=True):
        try:
            return ChainKey(read_key(old, configured=False), old, False, wanted, cause.problem, str(cause))
        except ChainKeyError:
            continue
    path = folder / (EMERGENCY_PREFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        created = create_key(path)
        key = read_key(path, configured=False)
    except (OSError, ChainKeyError) as exc:
        raise ChainKeyError(
            f"{cause}; and no emergency key could be created as {path} ({exc}): make {folder} writable for the service user",
            cause.problem,
        ) from None
    return ChainKey(key, path, created, wanted, cause.problem, str(cause))


def load_chain_key(configured: Path | None, buffer_path: Path) -> ChainKey:
    """The configured key, or the default one (created if absent); an emergency key when that
    is unusable. ChainKeyError only when not even an emergency key can be created."""
    if configured is not None:
        try:
            return ChainKey(read_key(configured, configured=True), configured, False, configured)
        except ChainKeyError as exc:
            return emergency_key(buffer_path, configured, exc)
    path = default_key_path(buffer_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = create_key(path)
    except OSError as exc:
        cause = ChainKeyError(
            f"cannot create the chain key {path} ({exc.strerror or exc}); make {path.parent} "
            "writable for the service user, or set gateway.chain_key_file",
            f"not creatable: {errno.errorcode.get(exc.errno or 0, 'error')}",
        )
        return emergency_key(buffer_path, path, cause)
    try:
        return ChainKey(read_key(path, configured=False), path, created, path)
    except ChainKeyError as exc:
        return emergency_key(buffer_path, path, exc)
