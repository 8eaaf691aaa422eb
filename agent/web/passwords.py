"""The page's password: stored as an scrypt hash in a file, checked in constant time.

scrypt (hashlib, OpenSSL) is memory-hard, so a stolen hash file is slow to brute-force on a
GPU; the parameters travel with the hash so they can be raised later without breaking old files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from agent.atomicfile import atomic_write

#: N=2**14, r=8, p=1: ~16 MiB and ~50 ms on a Raspberry Pi 4 per check (OWASP's scrypt minimum
#: is N=2**17 with r=8 only when no rate limit exists; logins here are rate-limited per address).
N, R, P = 2**14, 8, 1
MIN_LENGTH = 10


class PasswordFileError(Exception):
    """The password file is missing, unreadable or not a hash this module wrote."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; any malformed ``stored`` is simply False."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt, validate=True), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def read_hash(path: Path) -> str:
    """The stored hash, refusing a file that holds a plain password or nothing at all."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PasswordFileError(f"web.password_file {path}: cannot read it ({exc.strerror or exc})") from None
    if not text.startswith("scrypt$") or text.count("$") != 5:
        raise PasswordFileError(f"web.password_file {path}: not a password hash; write one with: headframe web-password {path}")
    return text


def write_hash_file(path: Path, password: str) -> None:
    """Write the hash of ``password`` to ``path``, mode 0600, atomically."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password of at least {MIN_LENGTH} characters")
    atomic_write(path, (hash_password(password) + "\n").encode(), mode=0o600)
