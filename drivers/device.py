"""Polls one device through its driver: planning, quality, retries, back-off, ageing, report-on-change."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from buffer.record import Kind, Record
from buffer.sink import RecordSink
from config.drivers import DeviceBase, PointSettings
from drivers.errors import DriverError, IllegalAddress
from drivers.latency import LatencyHistogram
from drivers.planner import Barrier, Block, split
from drivers.protocol import BadValue, Driver, PushingDriver, Reading, Values

log = logging.getLogger("headframe.drivers")

ValueListener = Callable[[str, str, Any, str, float], None]
_NUMBER = (int, float)  # a tuple: isinstance with it is cheaper than with ``int | float``, every point every poll


@dataclass(slots=True)
class PointState:
    """What was last read and last reported for a point (one per point: slots, no ``__dict__``)."""

    value: Any = None
    quality: str = "bad"
    reason: str | None = "not read yet"
    read_at: float = 0.0
    #: the device's own time of the value, when it says (OPC UA source timestamp)
    source_ts: float | None = None
    reported_value: Any = None
    reported_quality: str | None = None
    reported_at: float = 0.0


@dataclass
class DeviceHealth:
    state: str = "starting"
    last_ok: float | None = None
    last_error: str | None = None
    requests: int = 0
    errors: int = 0
    consecutive_failures: int = 0
    next_try: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    #: time per request (answer or error, including a wait for a shared serial bus)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


def _changed(point: PointSettings, st: PointState, now: float) -> bool:
    if st.quality != st.reported_quality:
        return True
    if now - st.reported_at >= point.max_silent:
        return True
    if st.quality != "good":
        return False
    value, reported = st.value, st.reported_value
    if isinstance(value, _NUMBER) and not isinstance(value, bool) and isinstance(reported, _NUMBER):
        return abs(value - reported) > point.deadband
    return bool(value != reported)


def _iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds (the wire format's time)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class DevicePoller:
    """One device's polling through its ``Driver``; driver errors become qualities, never exceptions.

    Protocol-agnostic: what differs between Modbus TCP, RTU and DL/T 645 lives in the driver.
    """

    def __init__(
        self,
        dev: DeviceBase,
        points: list[PointSettings],
        sink: RecordSink,
        driver: Driver,
        *,
        listener: ValueListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dev, self.sink, self.driver = dev, sink, driver
        self.listener = listener
        self.clock = clock
        self.points = points
        self.state = {p.name: PointState() for p in points}
        self._group_members: dict[str, list[tuple[PointSettings, PointState]]] = {}
        self.health = DeviceHealth()
        self.barriers: set[Barrier] = set()
        self.groups = {g.name: g for g in dev.groups}
        self._plans: dict[str, list[Block]] = {}
        self.requests_issued = 0
        if isinstance(driver, PushingDriver):
            driver.set_push(self.push)

    # ---------------------------------------------------------------- planning
    def blocks(self, group: str) -> list[Block]:
        if group not in self._plans:
            pts = [p for p in self.points if p.group == group]
            self._plans[group] = self.driver.plan(pts, frozenset(self.barriers))
        return self._plans[group]

    # ----------------------------------------------------------------- reading
    async def _read_block(self, block: Block, attempts: int) -> tuple[Values, float]:
        last: DriverError | None = None
        for _ in range(attempts):
            self.requests_issued += 1
            self.health.requests += 1
            started = time.perf_counter()
            try:
                values = await self.driver.read(block)
                self.health.latency.observe(time.perf_counter() - started)
                return values, self.clock()  # timestamp at response
            except DriverError as exc:
                self.health.latency.observe(time.perf_counter() - started)
                last = exc
                self.health.errors += 1
                if isinstance(exc, IllegalAddress):
                    break  # retrying the same block cannot help
        assert last is not None
        raise last

    def _store(self, values: Values, ts: float) -> None:
        for name, value in values.items():
            st = self.state[name]
            if isinstance(value, BadValue):
                st.quality, st.reason, st.read_at = "bad", value.reason, ts
            elif isinstance(value, Reading):
                st.value, st.quality, st.reason, st.read_at = value.value, value.quality, value.reason, ts
                st.source_ts = value.source_ts
            else:
                st.value, st.quality, st.reason, st.read_at = value, "good", None, ts

    def push(self, values: Values, ts: float) -> None:
        """Values the device pushed (a subscription): stored and reported now, like a read's."""
        values = {n: v for n, v in values.items() if n in self.state}
        self._store(values, ts)
        for group in {p.group for p in self.points if p.name in values}:
            self._report(group, self.clock())

    def _mark_bad(self, points: list[PointSettings], reason: str, ts: float) -> None:
        for p in points:
            st = self.state[p.name]
            st.quality, st.reason, st.read_at = "bad", reason, ts

    async def poll(self, group: str) -> None:
        """One cycle of a poll group; afterwards, report what changed."""
        now = self.clock()
        h = self.health
        in_backoff = h.consecutive_failures >= self.dev.backoff_after
        if in_backoff and now < h.next_try:
            self._age(group, now)
            self._report(group, now)
            return
        attempts = 1 if in_backoff else 1 + self.dev.retries  # a probe of a dead device costs one timeout
        any_ok, errors = False, []
        queue = list(self.blocks(group))
        while queue:
            block = queue.pop(0)
            try:
                values, ts = await self._read_block(block, attempts)
            except IllegalAddress as exc:
                halves, barrier = split(block)
                if len(halves) > 1:
                    if barrier:
                        self.barriers.add(barrier)
                        self._plans.pop(group, None)
                        log.info(
                            "%s: device refused block %s@%d+%d; split and remembered",
                            self.dev.id,
                            block.table,
                            block.start,
                            block.count,
                        )
                    queue[:0] = halves
                    continue
                errors.append(exc.reason)
                self._mark_bad(block.points, exc.reason, self.clock())
                continue
            except DriverError as exc:
                errors.append(exc.reason)
                self._mark_bad(block.points, exc.reason, self.clock())
                if exc.silent:
                    break  # the device is not answering: don't spend a timeout per block
                continue
            any_ok = True
            self._store(values, ts)
        if queue:  # skipped after a timeout
            self._mark_bad([p for b in queue for p in b.points], errors[-1], self.clock())
        self._update_state(any_ok, errors)
        self._report(group, self.clock())

    def _age(self, group: str, now: float) -> None:
        """Values not refreshed for ``stale_after`` intervals become stale (last value kept)."""
        limit = self.groups[group].interval * self.dev.stale_after
        for p in self.points:
            st = self.state[p.name]
            if p.group == group and st.quality == "good" and now - st.read_at > limit:
                st.quality, st.reason = "stale", f"not refreshed for {now - st.read_at:.0f}s ({self.health.state})"

    def _update_state(self, any_ok: bool, errors: list[str]) -> None:
        h = self.health
        old = h.state
        if any_ok:
            h.consecutive_failures = 0
            h.last_ok = self.clock()
            h.state = "degraded" if errors else "ok"
            h.last_error = errors[-1] if errors else None
        else:
            h.consecutive_failures += 1
            h.last_error = errors[-1] if errors else "no answer"
            if h.consecutive_failures >= self.dev.backoff_after:
                h.state = "backoff"
                h.next_try = self.clock() + self.dev.backoff_interval
            else:
                h.state = "offline" if old in ("offline", "backoff", "starting") else "degraded"
        if h.state != old:
            log.log(
                logging.WARNING if h.state in ("backoff", "offline") else logging.INFO,
                "%s: %s -> %s%s",
                self.dev.id,
                old,
                h.state,
                f" ({h.last_error})" if h.last_error else "",
            )
            self.sink.emit(
                Record(
                    self.dev.id, Kind.EVENT, {"event": "device_state", "state": h.state, "previous": old, "reason": h.last_error}
                )
            )

    def _members(self, group: str) -> list[tuple[PointSettings, PointState]]:
        """The group's points with their state, listed once (the report runs every poll)."""
        members = self._group_members.get(group)
        if members is None:
            members = self._group_members[group] = [(p, self.state[p.name]) for p in self.points if p.group == group]
        return members

    def _report(self, group: str, now: float) -> None:
        values: dict[str, Any] = {}
        listener, latest = self.listener, 0.0
        for p, st in self._members(group):
            if listener and st.quality == "good":
                listener(self.dev.id, p.name, st.value, st.quality, st.read_at)
            if not _changed(p, st, now):
                continue
            entry: dict[str, Any] = {"v": st.value if st.quality != "bad" else None, "q": st.quality}
            if p.unit:
                entry["unit"] = p.unit
            if st.reason:
                entry["reason"] = st.reason
            if st.source_ts is not None and st.quality != "bad":
                entry["src_ts"] = _iso(st.source_ts)
            values[p.name] = entry
            st.reported_value, st.reported_quality, st.reported_at = st.value, st.quality, now
            if st.read_at > latest:
                latest = st.read_at
        if values:
            self.sink.emit(Record(self.dev.id, Kind.TELEMETRY, {"group": group, "values": values}, ts=latest or now))

    def health_dict(self) -> dict[str, Any]:
        h = self.health
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h.last_ok)) if h.last_ok else None
        return {
            "state": h.state,
            "protocol": self.dev.protocol,
            "last_ok": iso,
            "last_error": h.last_error,
            "requests": h.requests,
            "errors": h.errors,
            "request_seconds": h.latency.as_dict(),
        }

    async def run_group(self, group: str, stop: asyncio.Event) -> None:
        """Poll at a fixed rate; a slow cycle skips ahead instead of piling up."""
        interval = self.groups[group].interval
        next_due = time.monotonic()
        while not stop.is_set():
            try:
                await self.poll(group)
            except Exception:  # a bug must not end polling of this device
                log.exception("%s: poll of group %s failed", self.dev.id, group)
            next_due += interval
            delay = next_due - time.monotonic()
            if delay < 0:
                next_due = time.monotonic()
                delay = 0
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
