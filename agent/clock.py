"""Is the system clock synchronised? Asked of the kernel (adjtimex), not of a daemon."""

from __future__ import annotations

import ctypes
import os

from agent.libc import libc

_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


def clock_synchronized() -> bool | None:
    """True when the kernel says NTP discipline is in effect, None when it cannot be read.

    ``HEADFRAME_CLOCK_OVERRIDE=synced|unsynced`` replaces the answer; it exists for the HIL
    rig's clock-fault scenarios (a container cannot unsynchronise the host clock).
    """
    override = os.environ.get("HEADFRAME_CLOCK_OVERRIDE")
    if override in ("synced", "unsynced"):
        return override == "synced"
    lib = libc()
    if lib is None:
        return None
    try:
        tx = _Timex()
        state = lib.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)
