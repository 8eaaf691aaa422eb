"""The C library, looked up once: ``ctypes.util.find_library`` runs ``ldconfig -p`` (a child
process and a parse of its output) on every call, and the clock check asks every health round."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The process's libc (errno kept for ``ctypes.get_errno``), or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
