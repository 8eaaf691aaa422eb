"""``headframe run``: wires config, buffer, uplink, producers, health and systemd together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.clock import clock_synchronized
from agent.continuity import ContinuityTracker, describe, state_path_for
from agent.continuity.config_audit import AppliedConfig
from agent.control import ControlServer
from agent.earlysignal import take_sighup, take_sigterm
from agent.health import HealthCollector
from agent.keystate import key_transition
from agent.memory import release_freed_memory
from agent.power import PowerMonitor, RunState, build_monitor, build_start_evidence
from agent.power.boot import UNCLAIMED, claim_run_state, iso
from agent.producers import Producer, build_producers
from agent.recording import RecordingOrders
from agent.reload import Reloader
from agent.sdnotify import Notifier, watchdog_interval
from agent.uplink import Uplink
from agent.uplink.status import PreviousSession
from agent.version import VERSION
from buffer.boundary import BufferService, Durability, Opened
from buffer.chainkey import ChainKeyError
from buffer.record import Kind, Record
from config import ConfigError, Settings, load_settings
from config.drivers import BusSettings
from drivers.bus import SerialBus
from rules import registry
from rules.engine import RulesEngine

if TYPE_CHECKING:
    from agent.metrics.exporter import MetricsExporter
    from agent.web.server import WebServer

log = logging.getLogger("headframe.agent")

#: A part that has not shown progress for this long is considered hung: watchdog pings stop
#: and systemd restarts the service. Generous, because an SD card fsync can take seconds.
WRITER_STALL_S = 20.0


class Daemon:
    """The agent's lifecycle: start, run until SIGTERM, reload on SIGHUP, stop cleanly."""

    def __init__(
        self,
        config_path: Path,
        settings: Settings,
        notifier: Notifier | None = None,
        install_signals: bool = True,
        previous_run_state: dict[str, Any] | None = UNCLAIMED,
    ) -> None:
        self.config_path = config_path
        self.install_signals = install_signals
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.stop_event = asyncio.Event()
        #: why the agent is stopping (signal name, or a part's reason such as mains_failure)
        self.stop_reason = "requested"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.buffer = BufferService(settings, clock_synchronized)
        #: site rules run inside the buffer's commits (docs/rules.md); none configured, none attached
        self.rule_errors: dict[str, str] = {}
        rules = registry.build(settings, self.rule_errors)
        self.rules = RulesEngine(rules) if rules else None
        if self.rules is not None:
            self.buffer.attach_rules(self.rules)
        self.uplink: Uplink | None = None
        self._uplink_stop = asyncio.Event()
        self._uplink_task: asyncio.Task[None] | None = None
        self.producers: list[Producer] = []
        self.producer_errors: dict[str, str] = {}
        self.health = HealthCollector(settings.health.disk_path or settings.buffer.path.parent, clock_synchronized)
        self.previous_shutdown = "unknown"
        self.run_state: RunState | None = None
        #: the previous run's state as ``claim_run_state`` read it (UNCLAIMED: claim at evidence time)
        self.previous_run_state = previous_run_state
        self.chain_key_health: dict[str, Any] = {}
        self.power: PowerMonitor | None = None
        self._power_stop = asyncio.Event()
        self._power_task: asyncio.Task[None] | None = None
        self.reloads = 0
        #: reloads run one at a time (SIGHUP while one runs: once more after it)
        #: SIGHUP and the page's saves: one at a time, validated before anything running is touched
        self.reloader = Reloader(self)
        self._reload_lock = self.reloader.lock
        self.loop_heartbeat = time.monotonic()
        self.continuity = ContinuityTracker(settings, state_path_for(settings.buffer.path), self.buffer.emit)
        #: set in ``run`` (hashing a big config is not free: do it once, with the audit salt)
        self.applied_config = AppliedConfig(str(config_path), None, "", None, {})
        #: ``headframe alarms`` (control.socket); changes to it take effect at the next restart
        self.control = ControlServer(settings.control, settings.buffer.path, self.buffer)
        #: the technician's page (docs/web.md); off unless ``web.enabled``; takes effect at the next start.
        #: Imported only when on: a gateway without the page does not carry aiohttp in memory.
        self.web: WebServer | None = None
        if settings.web.enabled:
            from agent.web.server import WebServer

            self.web = WebServer(
                settings.web,
                settings.buffer.path,
                self.buffer,
                f"{settings.gateway.site}/{settings.gateway.id}",
                config_path,
                self.reload,
                self._serial_buses,
                producers=lambda: self.producers,
            )
        #: Prometheus ``/metrics`` (docs/metrics.md): the health record's values; off unless
        #: ``metrics.enabled``, and then only is prometheus_client imported (≈ 4 MB of RSS otherwise)
        self.metrics: MetricsExporter | None = None
        if settings.metrics.enabled:
            from agent.metrics.exporter import MetricsExporter

            self.metrics = MetricsExporter(settings.metrics, settings.gateway.site, settings.gateway.id)
        #: evidence clips: the hot-work rule's committed orders, handed to the camera workers
        self.recording = RecordingOrders(self.buffer, lambda: self.producers)

    # ------------------------------------------------------------- start-up
    async def run(self) -> int:
        loop = self.loop = asyncio.get_running_loop()
        if self.install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._request_stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            if take_sighup():  # one came in while the agent was importing: reload after start-up
                log.info("a SIGHUP came in during start-up: reloading once started")
                self.request_reload()
            if take_sigterm():  # a stop asked for while importing: start, record it, stop cleanly
                log.info("a SIGTERM came in during start-up: stopping once started")
                self._request_stop(signal.SIGTERM)
        # a SIGHUP during start-up waits for it: a reload must not start an uplink or producers
        # next to the ones start-up is about to start (two sessions with one client id)
        async with self._reload_lock:
            tasks = await self._start()
        await self.stop_event.wait()
        await self._shutdown(tasks)
        return 0

    async def _start(self) -> list[asyncio.Task[None]]:
        """Open the buffer, record the start evidence, start every part; returns the loop tasks."""
        opened = await self.buffer.open()
        self.continuity.load()
        recorded = (self.continuity.state.config_hash, self.continuity.state.config_keys)
        self.applied_config = describe(self.settings, self.config_path, self.continuity.audit_salt(), recorded)
        self.previous_shutdown = "clean" if opened.previous_shutdown_clean else "unclean"
        started: dict[str, Any] = {
            "event": "agent_started",
            "version": VERSION,
            "previous_shutdown": self.previous_shutdown,
            "config": {"hash": self.applied_config.hash, "path": str(self.config_path)},
        }
        evidence = await self._start_evidence(opened)
        started.update(evidence)
        await self._key_evidence(opened)  # committed now: the first records of this run
        if opened.recovered_from:
            started["buffer_recovered_from"] = str(opened.recovered_from)
            self.buffer.emit(
                Record(
                    "agent", Kind.ALARM, {"alarm": "buffer_corrupt", "state": "raised", "moved_to": str(opened.recovered_from)}
                )
            )
        self.buffer.emit(Record("agent", Kind.EVENT, started))
        last_seq = opened.seq_resumed_from if opened.seq_resumed_from is not None else opened.last_seq
        self._begin_continuity(last_seq, evidence["previous_run"]["ended"])
        tasks = [
            asyncio.create_task(self.buffer.run(self.stop_event), name="buffer"),
            asyncio.create_task(self._health_loop(), name="health"),
            asyncio.create_task(self._watchdog_loop(), name="watchdog"),
            asyncio.create_task(self.continuity.run(self.stop_event), name="continuity"),
        ]
        self._start_uplink(self.settings)
        await self.control.start()
        if self.web is not None:
            await self.web.start()
        if self.metrics is not None:
            self.metrics.start()
        self._start_power(self.settings)
        await self._start_producers(self.settings)
        self.continuity.arm_energy_timeout()
        self.notifier.ready(self._status_line())
        log.info(
            "headframe %s running: gateway %s/%s, buffer %s, broker %s:%d",
            VERSION,
            self.settings.gateway.site,
            self.settings.gateway.id,
            self.settings.buffer.path,
            self.settings.uplink.host,
            self.settings.uplink.effective_port,
        )
        release_freed_memory()  # start-up garbage (the config key map before packing, plans) back to the OS
        return tasks

    async def _key_evidence(self, opened: Opened) -> None:
        """Commit the key change / key alarm first, so they carry the seq the key applies from."""
        if opened.chain_key is None:
            return
        transition = key_transition(opened.chain_key, self.settings.buffer.path.parent)
        self.chain_key_health = transition.health
        if transition.records:
            try:
                await self.buffer.append(transition.records, durability=Durability.POWER_LOSS)
            except Exception:
                log.exception("chain key: could not commit the key records now; they wait in the retry backlog")
                return
        try:
            await asyncio.to_thread(transition.save)
        except OSError as exc:
            log.error(
                "chain key: cannot save the key fingerprint to %s (%s); the next start repeats chain_key_changed",
                transition.state_path,
                exc,
            )

    def _begin_continuity(self, last_seq: int, ended: str) -> None:
        """Subscribe the continuity tracker, open the gap before this run (``ended`` is the boot
        evidence's ``previous_run.ended``), audit the config."""
        self.buffer.subscribe(self.continuity.on_commit)
        self.continuity.begin(ended, last_seq)
        self.buffer.emit(Record("agent", Kind.EVENT, self.continuity.config_applied(self.applied_config, "start")))

    def _link_restored(self, previous: PreviousSession, now: float) -> None:
        """A reconnect after a lost session leaves a ``link_down`` gap record (backfill follows)."""
        if previous.lost_at is not None:
            self.continuity.on_link_restored(previous.lost_at, now)

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self.stop_event.is_set():
            log.info("received %s: stopping", sig.name)
            self.notifier.stopping(f"stopping on {sig.name}")
            self.stop_reason = sig.name
            self.stop_event.set()

    def request_stop(self, reason: str) -> None:
        """A part of the agent asks for a clean stop (the power monitor on low battery)."""
        if not self.stop_event.is_set():
            log.warning("stopping cleanly: %s", reason)
            self.notifier.stopping(f"stopping: {reason}")
            self.stop_reason = reason
            self.stop_event.set()

    def _start_uplink(self, settings: Settings) -> None:
        self._run_uplink(self._make_uplink(settings))

    def _make_uplink(self, settings: Settings) -> Uplink:
        uplink = Uplink(settings, self.buffer)
        uplink.on_offline = self.continuity.on_link_lost
        uplink.on_online = self._link_restored
        return uplink

    def _run_uplink(self, uplink: Uplink) -> None:
        self._uplink_stop = asyncio.Event()
        self.uplink = uplink
        self._uplink_task = asyncio.create_task(uplink.run(self._uplink_stop), name="uplink")

    async def _stop_uplink(self) -> None:
        self._uplink_stop.set()
        if self._uplink_task is not None:
            try:
                await asyncio.wait_for(self._uplink_task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._uplink_task.cancel()

    async def _start_producers(self, settings: Settings) -> None:
        self.producers, self.producer_errors = build_producers(settings, self.buffer)
        for producer in list(self.producers):
            try:
                await producer.start()
            except Exception as exc:
                log.exception("producer %s failed to start; the rest of the agent runs on", producer.name)
                self.producer_errors[producer.name] = f"start failed: {exc}"
                self.producers.remove(producer)
        self.recording.apply()

    async def _stop_producers(self) -> None:
        for producer in self.producers:
            try:
                await asyncio.wait_for(producer.stop(), timeout=10)
            except Exception:
                log.exception("producer %s did not stop cleanly", producer.name)
        self.producers = []

    # ---------------------------------------------------------------- loops
    async def _health_loop(self) -> None:
        last = 0.0
        while not self.stop_event.is_set():
            # re-read the interval each turn so a reload takes effect without waiting a full period
            if time.monotonic() - last >= self.settings.health.interval:
                last = time.monotonic()
                self.buffer.refresh_clock()
                try:
                    await self.emit_health()
                except Exception:
                    log.exception("health: could not build the health record")
                self.notifier.status(self._status_line())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=min(0.25, self.settings.health.interval))

    async def emit_health(self) -> None:
        stats = await self.buffer.stats()
        if self.chain_key_health:
            stats["chain_key"] = self.chain_key_health
        producers: dict[str, Any] = {}
        for producer in self.producers:
            try:
                producers[producer.name] = producer.health()
            except Exception as exc:
                producers[producer.name] = {"state": "error", "last_error": str(exc)}
        for name, err in self.producer_errors.items():
            producers[name] = {"state": "failed", "last_error": err}
        payload = self.health.build(
            buffer=stats,
            uplink=self.uplink.health() if self.uplink else {},
            producers=producers,
            previous_shutdown=self.previous_shutdown,
            config_hash=self.applied_config.hash,
            power=self.power.health() if self.power else {"source": "none"},
        )
        if self.rules is not None or self.rule_errors:
            payload["rules"] = {**(self.rules.health() if self.rules else {}), "build_errors": dict(self.rule_errors)}
        if self.metrics is not None:
            self.metrics.update(payload)
        self.buffer.emit(Record("agent", Kind.HEALTH, payload))

    def alive(self) -> tuple[bool, str]:
        """Is every part making progress? The watchdog pings only when all are."""
        now = time.monotonic()
        if now - self.buffer.heartbeat > WRITER_STALL_S:
            return False, "buffer writer stalled"
        if self.uplink is not None:
            limit = self.settings.uplink.connect_timeout + WRITER_STALL_S
            if now - self.uplink.heartbeat > limit:
                return False, "uplink loop stalled"
        return True, "ok"

    async def _watchdog_loop(self) -> None:
        interval = watchdog_interval()
        if interval is None:
            return
        while not self.stop_event.is_set():
            ok, why = self.alive()
            if ok:
                self.notifier.watchdog()
            else:
                log.error("watchdog: %s; not pinging systemd (it will restart the service)", why)
            # recorded so that a kill on this boot reads as a watchdog kill at the next start
            if self.run_state is not None and ok == bool(self.run_state.doc.get("watchdog_withheld")):
                await asyncio.to_thread(self.run_state.watchdog_withheld, None if ok else why, iso())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=interval)

    def _status_line(self) -> str:
        state = self.uplink.state if self.uplink else "none"
        return f"uplink {state}; last seq {self.buffer.last_seq}; producers {len(self.producers)}"

    def _serial_buses(self) -> tuple[dict[str, BusSettings], dict[str, SerialBus]]:
        """Configured serial buses, and the ones the drivers hold open (the page probes through them)."""
        live: dict[str, SerialBus] = {}
        for producer in self.producers:
            live.update(getattr(producer, "buses", {}))
        return {b.name: b for b in self.settings.buses}, live

    # --------------------------------------------------------------- reload
    def request_reload(self) -> None:
        """SIGHUP (agent/reload.py): serialised and coalesced."""
        self.reloader.request()

    async def reload(self) -> bool:
        """Reload the config file now (SIGHUP, the technician's page); False when it was rejected."""
        return await self.reloader.reload()

    # ------------------------------------------------------------- shutdown
    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        # a reload in progress finishes first (it may be starting parts this stop must stop)
        async with self._reload_lock:
            await self._shutdown_parts(tasks)

    async def _shutdown_parts(self, tasks: list[asyncio.Task[None]]) -> None:
        await self.control.stop()
        if self.web is not None:
            await self.web.stop()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
        await self._stop_power()
        await self._stop_producers()
        self.continuity.finish()
        self.buffer.emit(Record("agent", Kind.EVENT, {"event": "agent_stopping", "reason": self.stop_reason}))
        await self.buffer.flush()
        await self._stop_uplink()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await self.buffer.flush()
        self.continuity.close()
        last_seq = self.buffer.last_seq
        await self.buffer.close(clean=True)
        if self.run_state is not None:
            await asyncio.to_thread(self.run_state.mark_clean, self.stop_reason, iso(), last_seq)
        log.info("stopped cleanly")

    # ------------------------------------------------------ power and boot
    async def _start_evidence(self, opened: Opened) -> dict[str, Any]:
        """``boot`` and ``previous_run`` for agent_started; begins this run's run-state file."""
        state_dir = self.settings.buffer.path.parent
        last_seq = opened.seq_resumed_from if opened.seq_resumed_from is not None else opened.last_seq
        last_ts = iso(opened.last_record_ts) if opened.last_record_ts is not None else None
        try:
            evidence = await asyncio.to_thread(
                build_start_evidence, state_dir, last_seq=last_seq, last_ts=last_ts, prev=self.previous_run_state
            )
            self.run_state = RunState.load(state_dir)
        except OSError as exc:
            log.error("boot evidence: cannot use %s (%s); the start record says so", state_dir, exc)
            return {"previous_run": {"ended": "unknown", "detail": f"run state not writable: {exc}"}}
        prev = evidence["previous_run"]
        log.info(
            "boot %s (#%s); previous run: %s (%s)",
            evidence["boot"]["boot_id"],
            evidence["boot"]["boot_count"],
            prev["ended"],
            prev["detail"],
        )
        return evidence

    def _start_power(self, settings: Settings) -> None:
        self._power_stop = asyncio.Event()
        self.power = build_monitor(settings.power, self._commit_now, self.request_stop, self.run_state)
        if self.power is not None:
            self._power_task = asyncio.create_task(self.power.run(self._power_stop), name="power")

    async def _stop_power(self) -> None:
        self._power_stop.set()
        if self._power_task is not None:
            try:
                await asyncio.wait_for(self._power_task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._power_task.cancel()
            self._power_task = None

    async def _commit_now(self, records: Sequence[Record], durability: str) -> None:
        """Commit ``records`` now, fsynced at ``durability``; raises if they were not committed
        (the power monitor then retries at its next poll)."""
        await self.buffer.append(records, durability=Durability(durability))


def run_daemon(config_path: Path) -> int:
    """Entry point of ``headframe run``: validate, then run until stopped."""
    from agent.logsetup import setup_logging

    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        setup_logging()
        log.error("config %s is invalid; nothing started:\n%s", config_path, exc)
        return 2
    setup_logging(settings.logging.level, settings.logging.journald)
    release_freed_memory()  # the YAML parse of a big config leaves tens of MB of freed heap behind
    # first thing that touches the disk: a start that fails from here on reads as not clean next time
    previous = claim_run_state(settings.buffer.path.parent)
    try:
        return asyncio.run(Daemon(config_path, settings, previous_run_state=previous).run())
    except ChainKeyError as exc:
        log.error("chain key: %s; nothing started", exc)
        return 2
