"""Everything the simulated site starts ends with it.

Two mechanisms, because neither covers every way the rig can end:

* ``stop_on_signals``: SIGTERM, SIGHUP and SIGINT become a ``StopSignal`` raised in the main
  thread, so the ``finally`` that stops the agent, simulators and broker runs (by default
  SIGTERM and SIGHUP end Python on the spot and leave every child running).
* ``die_with_parent``: each child started through ``spawn`` asks the kernel (``prctl
  PR_SET_PDEATHSIG``) for SIGTERM when the rig dies, also by SIGKILL or a crash, when no
  ``finally`` runs. Linux only; elsewhere it is a no-op and the ``finally`` is all there is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1
#: resolved here, in the parent: a child forked from a threaded rig must not dlopen() before exec
#: (another thread may have held the loader's lock at fork time)
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
#: names of the stop signals received (a view that catches KeyboardInterrupt hides the exception)
received: list[str] = []


class StopSignal(KeyboardInterrupt):
    """A stop signal reached the rig (a ``KeyboardInterrupt``, so Ctrl-C handling covers it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Turn the first stop signal into ``StopSignal``; later ones are ignored so the cleanup
    that follows is not cut short (it is bounded, and a SIGKILL still ends it)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        received.append(signal.Signals(signum).name)
        raise StopSignal(signum)

    for sig in SIGNALS:
        signal.signal(sig, handler)


def die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM this child when ``parent`` dies (checked once more after the
    prctl, in case the parent died in between). The kernel ties this to the thread that forked,
    so spawn from the main thread (the rig does)."""

    def preexec() -> None:
        if _prctl is None or _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` for a child that must not outlive the rig. From another thread no
    parent-death signal is asked for (it would fire when that thread ends, not the rig)."""
    main = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(argv, preexec_fn=die_with_parent(os.getpid()) if main else None, **kwargs)


def end(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s; never raises."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except OSError:
        pass
