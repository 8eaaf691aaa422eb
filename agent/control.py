"""The local control socket: how ``headframe alarms`` talks to the running agent.

A unix socket (``control.socket``, mode 0660: the agent's group may use it), one JSON object
per line each way. ``list`` answers the open alarms from the alarm manager's snapshot in the
buffer database (read-only). ``ack`` / ``handle`` / ``close`` become ``command`` records
(source ``local``, origin ``cli``, ``by`` = the OS user of the peer, from SO_PEERCRED): they are
committed first, the alarm manager acts on them in that commit, and its ``command_reply`` is
the answer. Nothing reaches the alarms except through the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import sqlite3
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agent.commanddesk import CommandDesk
from config.spine import ControlSettings

if TYPE_CHECKING:
    from buffer.boundary import Buffer

log = logging.getLogger("headframe.control")

#: alarm commands (the alarm manager) and hot-work permits (rules.hotwork) — any rule's command
#: reaches its rule the same way: recorded first, answered by the rule's ``command_reply``.
LOCAL_COMMANDS = ("ack", "handle", "close", "permit", "permit_revoke")
MAX_LINE = 4096
RULE_NAME = "alarms"


def peer_user(sock: Any) -> str:
    """The OS user on the other end of a unix socket (from the kernel, not from the client)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    try:
        return pwd.getpwuid(uid).pw_name[:64]
    except KeyError:
        return f"uid:{uid}"


def read_open_alarms(db_path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The open alarms from ``rule_state`` (read-only), and a note when there is no state yet."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return [], f"cannot open the buffer database {db_path}: {exc}"
    try:
        row = conn.execute("SELECT snapshot FROM rule_state WHERE name = ?", [RULE_NAME]).fetchone()
    except sqlite3.OperationalError:
        return [], "no rule state in the buffer database yet (the rules engine has not run)"
    finally:
        conn.close()
    if row is None:
        return [], "the alarm manager has saved no state yet (no alarm since it started)"
    blob = row[0]
    snap = orjson.loads(blob if isinstance(blob, bytes | str) else bytes(blob))
    from rules.alarm_life import Alarm

    return [Alarm.from_dict(doc).public() for doc in snap.get("open", [])], None


class ControlServer:
    """Serves the control socket on the event loop until stopped."""

    def __init__(self, cfg: ControlSettings, db_path: Path, buffer: Buffer) -> None:
        self.cfg = cfg
        self.path = cfg.socket
        self.db_path = db_path
        self.buffer = buffer
        self._server: asyncio.AbstractServer | None = None
        self.desk = CommandDesk(buffer)

    async def start(self) -> bool:
        """Listen; a socket that cannot be created is logged and the agent runs on without it."""
        if not self.cfg.enabled:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=MAX_LINE)
            os.chmod(self.path, 0o660)
        except OSError as exc:
            log.error(
                "control: cannot serve %s (%s); 'headframe alarms' will not work (control.socket)", self.path, exc.strerror or exc
            )
            return False
        log.info("control: listening on %s", self.path)
        return True

    def _remove_stale(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"{self.path} exists and is not a socket; not touching it")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # left by an agent that died
                return
        raise OSError(f"another agent already answers on {self.path}")

    async def stop(self) -> None:
        self.desk.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            user = peer_user(writer.get_extra_info("socket"))
            while line := await reader.readline():
                answer = await self._answer(line, user)
                writer.write(orjson.dumps(answer) + b"\n")
                await writer.drain()
        except (ValueError, asyncio.LimitOverrunError):
            writer.write(orjson.dumps({"ok": False, "error": f"request longer than {MAX_LINE} bytes"}) + b"\n")
        except (ConnectionError, OSError) as exc:
            log.debug("control: client went away: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, line: bytes, user: str) -> dict[str, Any]:
        try:
            req = orjson.loads(line)
        except orjson.JSONDecodeError:
            return {"ok": False, "error": "request is not JSON"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "request is not a JSON object"}
        op = req.get("op")
        if op == "list":
            alarms, note = await asyncio.to_thread(read_open_alarms, self.db_path)
            return {"ok": True, "alarms": alarms, **({"note": note} if note else {})}
        if op in LOCAL_COMMANDS:
            return await self._command(str(op), req, user)
        return {"ok": False, "error": f"unknown op {str(op)[:20]!r}; one of list, {', '.join(LOCAL_COMMANDS)}"}

    async def _command(self, op: str, req: dict[str, Any], user: str) -> dict[str, Any]:
        return await self.desk.submit(op, req.get("target"), user, "cli", req.get("id"), req.get("args"))
