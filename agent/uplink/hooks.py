"""Session hooks: what a wire format needs besides ``format(rec)``, around each MQTT session.

Sparkplug B is stateful per connection: the will must be the NDEATH of this connection, an
NBIRTH follows the CONNACK, inbound node commands arrive on the session, and a clean stop sends
the NDEATH itself. A formatter that also implements this protocol gets these calls from the
``Uplink``; the plain JSON formatter does not, and nothing changes for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from agent.uplink.session import Session, Will


@runtime_checkable
class SessionHooks(Protocol):
    def will(self) -> Will:
        """The will for the next connection attempt (called once per attempt)."""
        ...

    def begin(self, session: Session) -> None:
        """The session is up (CONNACK): announce ourselves, subscribe to our commands."""
        ...

    async def ready(self, session: Session, stop: asyncio.Event, beat: Callable[[], None]) -> bool:
        """True when records may flow on ``session``; False if it was lost or ``stop`` was set first.
        Calls ``beat`` at least once a second while it waits (the watchdog's sign of life)."""
        ...

    def end(self, session: Session) -> None:
        """A clean stop is about to DISCONNECT (the broker will not publish the will)."""
        ...

    def counters(self) -> dict[str, Any]:
        """For the health record."""
        ...
