"""The retained status documents, each saying since when and why (docs/mqtt.md, "Status").

A consumer must not have to guess an outage from the moment it happened to receive a message:
the online status names the previous session's end as the gateway saw it and how long the
link was down; the will (fixed at connect) names the session it belongs to; a clean stop says
when it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from agent.version import VERSION
from config.schema import Settings


def iso(t: float) -> str:
    """ISO-8601 UTC with milliseconds, the format of every time on the wire."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(t)) + f"{int(t * 1000) % 1000:03d}Z"


def iso_now() -> str:
    return iso(time.time())


@dataclass(frozen=True)
class PreviousSession:
    """How the last session ended, from the gateway's side (None times: no earlier session in this run)."""

    lost_at: float | None
    reason: str
    attempts: int = 0
    last_error: str | None = None

    def doc(self, now: float) -> dict[str, Any]:
        return {
            "lost_at": iso(self.lost_at) if self.lost_at is not None else None,
            "down_s": round(now - self.lost_at, 3) if self.lost_at is not None else None,
            "reason": self.reason,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


class StatusDocs:
    """Builds the bodies of ``{root}status``; all times are the gateway's wall clock."""

    def __init__(self, settings: Settings) -> None:
        g = settings.gateway
        self._base: dict[str, Any] = {"gateway": g.id, "site": g.site, "version": VERSION}

    def online(self, session_started: float, since: float, previous: PreviousSession) -> bytes:
        return orjson.dumps(
            {
                "status": "online",
                **self._base,
                "since": iso(since),
                "session": {"started": iso(session_started)},
                "previous_session": previous.doc(since),
            }
        )

    def will(self, session_started: float) -> bytes:
        """Set at CONNECT, published by the broker if the session dies: it cannot know the moment
        of death, so it names the session (and the last moment the gateway vouches for)."""
        return orjson.dumps(
            {
                "status": "offline",
                **self._base,
                "reason": "connection lost",
                "session_started": iso(session_started),
                "last_seen_by_gateway": iso(session_started),
            }
        )

    def shutdown(self, session_started: float, since: float) -> bytes:
        return orjson.dumps(
            {
                "status": "offline",
                **self._base,
                "reason": "shutdown",
                "since": iso(since),
                "session": {"started": iso(session_started)},
            }
        )
