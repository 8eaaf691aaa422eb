"""The primary host application's state (Sparkplug 3.0, ``spBv1.0/STATE/<host_id>``).

A node configured with a primary host publishes only while that host says it is online, so a
SCADA that is down does not miss births and data: the readings wait in the buffer and go out
after the host is back and the node has re-born. The host publishes, retained at QoS 1,
``{"online": true|false, "timestamp": <ms>}``; a message with an older timestamp than the last
one seen is stale (a late retained copy) and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson

from agent.uplink.session import Session

log = logging.getLogger("headframe.uplink")


class PrimaryHost:
    """Follows one host's STATE topic; ``changed`` is set whenever ``online`` flips."""

    def __init__(self, host_id: str) -> None:
        self.host_id = host_id
        self.topic = f"spBv1.0/STATE/{host_id}"
        self.online = False
        self.last_ts = -1
        self.changed = asyncio.Event()
        #: called when the host goes offline during a session (the node must disconnect)
        self.on_offline: Callable[[], None] | None = None

    def watch(self, session: Session) -> None:
        self.online, self.last_ts = False, -1  # a new session learns the state from the retained message
        session.subscribe(self.topic, self.on_message)

    def on_message(self, topic: str, raw: bytes, retain: bool) -> None:
        try:
            doc = orjson.loads(raw)
            online, ts = doc["online"], doc["timestamp"]
            if not isinstance(online, bool) or not isinstance(ts, int) or isinstance(ts, bool):
                raise TypeError("online must be true/false and timestamp an integer (ms)")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("sparkplug: ignored a STATE message on %s that is not {online, timestamp}: %s", topic, exc)
            return
        if ts < self.last_ts:
            log.info("sparkplug: ignored a stale STATE on %s (timestamp %d < %d)", topic, ts, self.last_ts)
            return
        self.last_ts = ts
        if online == self.online:
            return
        self.online = online
        self.changed.set()
        log.info("sparkplug: primary host %s is %s", self.host_id, "online" if online else "offline")
        if not online and self.on_offline is not None:
            self.on_offline()
