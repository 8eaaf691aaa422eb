"""Login sessions, CSRF tokens and the failed-login limit — all in memory.

Sessions live only as long as the agent: a restart logs everyone out, which is what a
technician expects of a device page and avoids storing tokens on the gateway's disk.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

#: at most this many sessions at once (a page for one or two technicians, not a portal)
MAX_SESSIONS = 32


@dataclass
class Session:
    id: str
    csrf: str
    user: str
    address: str
    last_seen: float
    created: float = field(default_factory=time.monotonic)


class Sessions:
    """Session ids are 256-bit random tokens; the CSRF token is separate and per session."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._by_id: dict[str, Session] = {}

    def create(self, user: str, address: str, now: float | None = None) -> Session:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if len(self._by_id) >= MAX_SESSIONS:  # drop the least recently used
            oldest = min(self._by_id.values(), key=lambda s: s.last_seen)
            del self._by_id[oldest.id]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, address, now)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None, now: float | None = None) -> Session | None:
        """The live session for ``session_id`` (its idle time restarts), or None."""
        if not session_id:
            return None
        now = time.monotonic() if now is None else now
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if now - session.last_seen > self.idle_s:
            del self._by_id[session_id]
            return None
        session.last_seen = now
        return session

    def drop(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid in [s.id for s in self._by_id.values() if now - s.last_seen > self.idle_s]:
            del self._by_id[sid]


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), str(token).encode())


class LoginLimiter:
    """After ``max_failed`` failures from one address within ``window_s``, refuse it for ``window_s``."""

    def __init__(self, max_failed: int, window_s: float) -> None:
        self.max_failed, self.window_s = max_failed, window_s
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, address: str, now: float | None = None) -> float:
        """Seconds this address must still wait (0: it may try)."""
        now = time.monotonic() if now is None else now
        fails = self._failures.get(address)
        if not fails:
            return 0.0
        while fails and now - fails[0] > self.window_s:
            fails.popleft()
        if len(fails) < self.max_failed:
            return 0.0
        return max(0.0, self.window_s - (now - fails[-1]))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 4096:  # bounded under a spray of addresses
            self._failures.clear()
        self._failures.setdefault(address, deque(maxlen=self.max_failed)).append(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
