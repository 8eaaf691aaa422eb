"""Reloading the config while running (SIGHUP, the technician's page): one at a time, and
everything that can fail is done before anything running is touched, so a bad file or an
unreadable password leaves the running config as it was (and a ``config_reload_rejected``
record says why)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.continuity import describe
from agent.continuity.config_audit import AppliedConfig, changed_keys
from agent.power import build_monitor
from agent.uplink import Uplink
from buffer.record import Kind, Record
from config import ConfigError, Settings, load_settings
from config.schema import RESTART_ONLY_SECTIONS

if TYPE_CHECKING:
    from agent.daemon import Daemon

log = logging.getLogger("headframe.agent")


@dataclass(frozen=True)
class ReloadPlan:
    """A validated config and the parts built for it, before anything running is touched."""

    settings: Settings
    applied: AppliedConfig
    pending: list[str]
    uplink: Uplink | None  # built when the uplink settings changed, not started
    power: bool  # the power settings changed


class Reloader:
    """Serialises reloads (a lock also held by start-up and shutdown) and coalesces SIGHUPs."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.lock = asyncio.Lock()
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """SIGHUP. Reloads never overlap: one asked for while another runs is coalesced into
        a single reload after it (which reads the file as it is then)."""
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="reload")

    async def _loop(self) -> None:
        d = self.d
        while self._pending and not d.stop_event.is_set():
            self._pending = False
            try:
                await self.reload()
            except Exception:  # reload() keeps the running config; this only keeps the task alive
                log.exception("reload: unexpected failure")

    async def reload(self) -> bool:
        """Validate the file and build the new parts first; a bad config keeps the running one."""
        d = self.d
        async with self.lock:
            try:
                plan = self._prepare()
            except ConfigError as exc:
                self._reject([str(p) for p in exc.problems], f"config invalid:\n{exc}")
                return False
            except Exception as exc:  # any failure here must keep the running config
                self._reject([f"{d.config_path}: {exc}"], f"cannot build the new parts: {exc}")
                return False
            await self._apply(plan)
            return True

    def _reject(self, problems: list[str], why: str) -> None:
        d = self.d
        log.error("reload rejected, keeping the running config: %s", why)
        d.notifier.status("reload rejected: config invalid (see log)")
        payload = {
            "event": "config_reload_rejected",
            "trigger": "reload",
            "path": str(d.config_path),
            "running_hash": d.applied_config.hash,
            "problems": problems[:20],
        }
        d.buffer.emit(Record("agent", Kind.EVENT, payload))

    def _prepare(self) -> ReloadPlan:
        """Everything that can fail, before anything running is touched."""
        d = self.d
        new = load_settings(d.config_path)
        old = d.settings
        salt = d.continuity.audit_salt()
        loaded = describe(new, d.config_path, salt)
        fixed = RESTART_ONLY_SECTIONS  # these take effect at the next start
        if any(getattr(new, k) != getattr(old, k) for k in fixed):
            log.warning("reload: changes to %s take effect at the next restart", ", ".join(repr(k) for k in fixed))
            new = new.model_copy(update={k: getattr(old, k) for k in fixed})
        applied = describe(new, d.config_path, salt)
        applied = dataclasses.replace(applied, mtime=loaded.mtime, file_hash=loaded.file_hash)
        # built, not started: a password file that cannot be read rejects the reload here
        uplink = d._make_uplink(new) if new.uplink != old.uplink else None
        power = new.power != old.power
        if power:
            build_monitor(new.power, d._commit_now, d.request_stop, d.run_state)
        return ReloadPlan(new, applied, changed_keys(applied.keys, loaded.keys), uplink, power)

    async def _apply(self, plan: ReloadPlan) -> None:
        d = self.d
        new = plan.settings
        # the audit record goes first: a stop while the new parts start must not leave the change unrecorded
        d.continuity.update_settings(new)
        audit = d.continuity.config_applied(plan.applied, "reload", pending_restart=plan.pending or None)
        d.buffer.emit(Record("agent", Kind.EVENT, audit))
        d.applied_config = plan.applied
        d.settings = new
        if plan.uplink is not None:
            log.info("reload: uplink settings changed; reconnecting")
            # an outage still going on carries over to the new uplink (its gap must not be lost)
            if d.uplink is not None and d.uplink.state != "connected":
                plan.uplink.previous = d.uplink.previous
            await d._stop_uplink()
            d._run_uplink(plan.uplink)
        if plan.power:
            log.info("reload: power settings changed; restarting the power monitor")
            await d._stop_power()
            d._start_power(new)
        await d._stop_producers()
        await d._start_producers(new)
        d.reloads += 1
        d.buffer.emit(Record("agent", Kind.EVENT, {"event": "config_reloaded", "hash": plan.applied.hash}))
        log.info("reload: new config in effect")
