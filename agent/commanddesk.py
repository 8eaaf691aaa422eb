"""Local commands (``headframe alarms``, the technician's page) into the buffer, and their replies.

A local command is a ``command`` record (source ``local``) committed like any other; the rule
that owns it (the alarm manager) acts on it inside that commit and answers with a
``command_reply`` record. The desk waits for that reply; it never touches an alarm itself.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.uplink.commands import Invalid, parse
from agent.uplink.status import iso_now
from buffer.record import Kind, Record

if TYPE_CHECKING:
    from buffer.boundary import Buffer, Committed

log = logging.getLogger("headframe.control")

#: How long a command waits for its reply (the alarm manager replies in the commit itself).
REPLY_TIMEOUT_S = 5.0


class CommandDesk:
    """Submit local commands and wait for the rules' reply."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._unsubscribe = buffer.subscribe(self._on_commit)

    def close(self) -> None:
        self._unsubscribe()

    def _on_commit(self, committed: Sequence[Committed]) -> None:
        for item in committed:
            rec = item.record
            if rec.source == "local" and rec.kind is Kind.EVENT and rec.payload.get("event") == "command_reply":
                fut = self._waiting.get(str(rec.payload.get("id")))
                if fut is not None and not fut.done():
                    fut.set_result(rec.payload)

    async def submit(self, op: str, target: Any, by: str, origin: str, cid: Any = None, args: Any = None) -> dict[str, Any]:
        """Record the command, wait for its reply; the answer says what happened in plain words."""
        cid = cid or f"{origin}-{uuid.uuid4().hex[:16]}"
        ask = {"id": cid, "command": op, "target": target, "by": by, **({"args": args} if args is not None else {})}
        try:  # the same strict checks as a platform command
            doc = parse(_json(ask))
        except (Invalid, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        payload = {
            "event": "command",
            "id": doc["id"],
            "command": op,
            "target": doc["target"],
            "by": by,
            "received": iso_now(),
            "origin": origin,
            **({"args": doc["args"]} if "args" in doc else {}),
        }
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[doc["id"]] = fut
        try:
            seqs = await self.buffer.append([Record("local", Kind.EVENT, payload)])
            log.info("%s: %s asked %s %s (command %s, seq %s)", origin, by, op, doc["target"], doc["id"], seqs[0])
            try:
                reply = await asyncio.wait_for(fut, REPLY_TIMEOUT_S)
            except TimeoutError:
                return {
                    "ok": False,
                    "recorded": True,
                    "id": doc["id"],
                    "seq": seqs[0],
                    "error": f"command recorded (seq {seqs[0]}) but no reply from its rule within "
                    f"{REPLY_TIMEOUT_S:.0f}s (is the rule that owns {op!r} configured: rules.alarms / rules.hotwork?)",
                }
        except Exception as exc:  # the buffer keeps it in its retry backlog: acted on once committed
            return {
                "ok": False,
                "error": f"the buffer could not commit the command now ({exc}); it is queued and takes effect when committed",
            }
        finally:
            self._waiting.pop(doc["id"], None)
        ok = reply.get("result") == "ok"
        return {
            "ok": ok,
            "recorded": True,
            "id": doc["id"],
            "seq": seqs[0],
            "reply": reply,
            **({} if ok else {"error": reply.get("reason") or reply.get("result")}),
        }


def _json(doc: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(doc)
