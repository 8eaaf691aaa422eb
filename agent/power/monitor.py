"""Watches mains/UPS state and turns changes into committed evidence.

mains lost    → alarm ``mains_lost`` raised, committed at once with power-loss durability;
mains back    → ``mains_lost`` cleared;
low battery   → event ``power_failing`` committed, then a clean stop is requested, so the
                agent flushes and exits before the UPS dies (next start: ended=mains_failure).
A source that cannot be read is reported in health (``power.last_error``) and retried with
back-off; it never stops the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from agent.backoff import Backoff
from agent.power.boot import iso
from agent.power.reading import LOW_BATTERY, MAINS, ON_BATTERY, UNKNOWN, PowerReading, PowerSourceError
from agent.power.runstate import RunState
from buffer.record import Kind, Record
from config.power import PowerSettings

log = logging.getLogger("headframe.power")

#: ``commit(records, durability)``: the buffer's append that returns once the records are durable.
Commit = Callable[[Sequence[Record], str], Awaitable[Any]]
POWER_LOSS = "power_loss"


class PowerSource(Protocol):
    kind: str

    @property
    def name(self) -> str: ...
    async def read(self) -> PowerReading: ...
    def close(self) -> None: ...


class PowerMonitor:
    """Polls one source; owns the mains state machine and the power part of health."""

    def __init__(
        self,
        settings: PowerSettings,
        source: PowerSource,
        commit: Commit,
        request_stop: Callable[[str], None],
        run_state: RunState | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.commit = commit
        self.request_stop = request_stop
        self.run_state = run_state
        self.state = UNKNOWN
        self.since: str | None = None
        self.reading: PowerReading | None = None
        self.last_error: str | None = None
        self.last_read: str | None = None
        self._outage_mono: float | None = None
        self._mains_alarm_raised = False
        self._stop_requested = False

    # ---------------------------------------------------------------- loop
    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.settings.retry_min, self.settings.retry_max)
        try:
            while not stop.is_set():
                delay = self.settings.poll
                try:
                    reading = await self.source.read()
                except PowerSourceError as exc:
                    delay = self._failed(str(exc), backoff)
                except Exception as exc:  # a library bug must not take the agent down
                    log.exception("power: unexpected error reading %s", self.source.kind)
                    delay = self._failed(f"unexpected {type(exc).__name__}: {exc}", backoff)
                else:
                    if self.last_error is not None:
                        log.info("power: %s %s answers again", self.source.kind, self.source.name)
                    self.last_error = None
                    backoff.reset()
                    self.last_read = iso()
                    try:
                        await self.apply(reading)
                    except Exception:
                        log.exception("power: could not record the power state")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            self.source.close()

    def _failed(self, message: str, backoff: Backoff) -> float:
        if message != self.last_error:
            log.error("power: %s; retrying with back-off, the agent runs on", message)
        self.last_error = message
        return backoff.next_delay()

    # --------------------------------------------------------- transitions
    async def apply(self, reading: PowerReading) -> None:
        """Compare with the last state and commit what changed (also called by tests directly)."""
        self.reading = reading
        new = reading.state
        if new == MAINS:
            self._outage_mono = None
        elif self._outage_mono is None:
            self._outage_mono = time.monotonic()
        if new != LOW_BATTERY and self._outage_too_long():
            new = LOW_BATTERY
        if new == self.state:
            return
        old, self.state, self.since = self.state, new, iso()
        level = logging.INFO if new == MAINS and old == UNKNOWN else logging.WARNING
        log.log(level, "power: %s → %s (%s)", old, new, reading.status)
        await self._record_state(new)
        records: list[Record] = []
        raised = self._mains_alarm_raised
        if new in (ON_BATTERY, LOW_BATTERY) and not raised:
            records.append(self._alarm("raised", reading))
            raised = True
        elif new == MAINS and raised:
            records.append(self._alarm("cleared", reading))
            raised = False
        if new == LOW_BATTERY:
            records.append(
                Record(
                    "agent",
                    Kind.EVENT,
                    {
                        "event": "power_failing",
                        **self._battery(reading),
                        "status": reading.status,
                        "source_kind": self.source.kind,
                    },
                )
            )
        try:
            if records:
                await self.commit(records, POWER_LOSS)
            self._mains_alarm_raised = raised
        except Exception:
            log.exception("power: could not commit %d power record(s); retrying at the next poll", len(records))
            if new != LOW_BATTERY:  # on low battery there is no time to retry: stop anyway
                self.state = old
                return
        if new == LOW_BATTERY and not self._stop_requested:
            self._stop_requested = True
            if self.run_state is not None:
                await asyncio.to_thread(self.run_state.update, stopping_reason="mains_failure")
            log.warning("power: battery low; flushing and stopping cleanly before the UPS gives out")
            self.request_stop("mains_failure")

    def _outage_too_long(self) -> bool:
        limit = self.settings.stop_after
        return limit is not None and self._outage_mono is not None and time.monotonic() - self._outage_mono >= limit

    async def _record_state(self, state: str) -> None:
        """Run state first: a cut right after still lets the next start say mains_failure."""
        if self.run_state is not None:
            detail = {"source_kind": self.source.kind, **self._battery(self.reading)}
            await asyncio.to_thread(self.run_state.set_power, state, self.since or iso(), detail)

    def _battery(self, reading: PowerReading | None) -> dict[str, Any]:
        if reading is None:
            return {}
        return {"battery_charge": reading.charge, "runtime_s": reading.runtime_s}

    def _alarm(self, state: str, reading: PowerReading) -> Record:
        payload: dict[str, Any] = {"alarm": "mains_lost", "state": state, "source_kind": self.source.kind}
        payload["ups" if self.source.kind == "nut" else "input"] = self.source.name
        payload.update(self._battery(reading))
        return Record("agent", Kind.ALARM, payload)

    # -------------------------------------------------------------- health
    def health(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "source": self.source.kind,
            "name": self.source.name,
            "state": self.state,
            "since": self.since,
            "last_read": self.last_read,
            "last_error": self.last_error,
        }
        if self.reading is not None:
            doc.update(self._battery(self.reading), status=self.reading.status)
        return doc


def build_monitor(
    settings: PowerSettings, commit: Commit, request_stop: Callable[[str], None], run_state: RunState | None = None
) -> PowerMonitor | None:
    """The configured monitor, or None for ``source: none``."""
    source: PowerSource
    if settings.source == "nut":
        from agent.power.nut import NutSource

        source = NutSource(settings.nut_or_default)
    elif settings.source == "gpio":
        from agent.power.gpio import GpioSource

        assert settings.gpio is not None
        source = GpioSource(settings.gpio)
    else:
        return None
    return PowerMonitor(settings, source, commit, request_stop, run_state)
