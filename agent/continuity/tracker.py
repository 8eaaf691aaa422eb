"""ContinuityTracker: watches every committed record and explains each gap in the stream.

It subscribes to buffer commits (``Buffer.subscribe``), keeps what the next start will need
(last seq/ts, each meter's last energy counter, camera fault periods, the config key map) in
a small state file, and writes the ``gap`` record at start, at uplink reconnect and when the
wall clock jumps, plus the ``gateway_dark_while_site_ran`` alarm (docs/evidence.md).

Staleness: the state file is rewritten at most once per ``continuity.state_interval`` (default
5 s) while something changed, at once for rare events (start, config applied), and at a
clean stop. After a kill or power cut it can therefore lag by up to that interval. For the
energy ``before`` value this is harmless by construction: a counter only rises, so an older
``before`` makes the reported delta an upper bound (it includes at most one interval of
consumption that is also in the stream before the gap): it can over-state, never hide, what
the site drew. ``from.seq`` is always exact (the buffer's own last seq); when the state lagged,
``from.ts`` is the time of ``from.ts_of_seq``, an earlier record.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent.continuity import gaps
from agent.continuity.config_audit import AppliedConfig, applied_event, changed_keys
from agent.continuity.energy import configured_energy_points, energy_readings
from agent.continuity.state import CameraFault, ContinuityState, EnergyReading, StateFile
from buffer.record import Kind, Record
from config.schema import Settings

log = logging.getLogger("headframe.continuity")

#: Closed camera fault periods are kept this long (to list them in a later link-down gap).
FAULT_KEEP_S = 7 * 86400.0
FAULT_KEEP_N = 200
#: The (ts, seq) history used to place a link loss in the stream: one sample per 5 s, 24 h.
HISTORY_EVERY_S = 5.0
HISTORY_LEN = 17280


class CommittedLike(Protocol):
    """What a commit subscriber receives per record (``buffer.boundary.Committed``); read-only, as that is frozen."""

    @property
    def seq(self) -> int: ...

    @property
    def record(self) -> Record: ...


def state_path_for(buffer_path: Path) -> Path:
    return buffer_path.with_name(buffer_path.name + ".continuity.json")


class ContinuityTracker:
    """Continuity evidence for one agent run. All methods run on the event loop."""

    def __init__(
        self,
        settings: Settings,
        state_path: Path,
        emit: Callable[[Record], None],
        *,
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.emit, self.clock, self.mono = settings, emit, clock, mono
        self.file = StateFile(state_path)
        self.state = ContinuityState()
        self.loaded = False
        self._dirty = False
        #: a change the next start cannot do without (a meter's first reading, the first record of
        #: this run): saved at the next periodic turn (≤ 0.25 s), not after the interval
        self._urgent = False
        self._seen_this_run = False
        self._config_due: tuple[str, AppliedConfig] | None = None
        self._saved_mono = -1e9
        self._gap: dict[str, Any] | None = None  # the start gap being completed
        self._before: dict[str, EnergyReading] = {}
        self._after: dict[str, float] = {}
        self._why: dict[str, str] = {}
        self._expected: dict[str, float] = configured_energy_points(settings)
        self._deadline: float | None = None
        self._wait_s = 0.0
        self._jump: dict[str, Any] | None = None  # a runtime clock jump waiting for its "to"
        self._offset = self.clock() - self.mono()
        self._history: deque[tuple[float, int]] = deque(maxlen=HISTORY_LEN)
        self._link_lost: tuple[float, int, dict[str, EnergyReading]] | None = None

    # ------------------------------------------------------------ state file
    def load(self) -> ContinuityState | None:
        """The previous run's state (None if there is none or it is unusable)."""
        previous = self.file.load()
        if previous is not None:
            self.state = previous
        self.loaded = previous is not None
        return previous

    def audit_salt(self) -> bytes:
        """The gateway's secret salt for config audit hashes, created with the state (call after load)."""
        if not self.state.audit_salt:
            self.state.audit_salt = os.urandom(32).hex()
            self._dirty = self._urgent = True
        return bytes.fromhex(self.state.audit_salt)

    def _snapshot(self) -> bytes:
        self.state.saved_at = self.clock()
        self._dirty = self._urgent = False
        self._saved_mono = self.mono()
        return self.file.encode(self.state)

    def _write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:  # the buffer is on the same disk: the writer reports the real problem
            self._dirty = True
            log.error(
                "continuity: cannot save %s (%s); the next gap record may be less precise", self.file.path, exc.strerror or exc
            )

    def save(self) -> None:
        """Save now, on the calling thread (rare events: start, config applied, clean stop)."""
        self._write(self._snapshot())

    # ------------------------------------------------------------- start gap
    def begin(self, ended: str, buffer_last_seq: int, detail: str | None = None) -> None:
        """Open the gap before this run. ``ended`` is ``previous_run.ended`` of the boot evidence."""
        st = self.state
        if st.pending_gap is not None and "_emitted" in st.pending_gap:
            # the previous run emitted its gap but stopped before seeing it committed: send it again
            # (same gap_id: a consumer that got it once sees a duplicate, never nothing)
            self._emit_final(st.pending_gap["_emitted"], st.pending_gap.get("_alarm"))
        elif st.pending_gap is not None:  # the previous run stopped before its own gap was complete
            old = st.pending_gap
            expected = list(old.pop("_expected", []))
            before = {k: EnergyReading(*v) for k, v in old.pop("_before", {}).items()}
            if old.get("to") is None:
                old["to"] = {"seq": None, "ts": None}
            self._emit_gap(
                old,
                before,
                dict(old.pop("_after", {})),
                dict.fromkeys(expected, "the agent stopped again before the meter answered"),
                expected,
            )
        if not self.loaded and buffer_last_seq == 0:
            self.save()  # a brand-new gateway: nothing before, no gap
            return
        now = self.clock()
        cause = gaps.start_cause(ended, st.last_ts, now)
        frm: dict[str, Any] = {"seq": max(buffer_last_seq, st.last_seq), "ts": gaps.iso(st.last_ts)}
        if st.last_seq < frm["seq"] and st.last_ts is not None:
            frm["ts_of_seq"] = st.last_seq
        gap: dict[str, Any] = {"event": "gap", "cause": cause, "previous_run": ended, "from": frm, "to": None}
        if detail:
            gap["detail"] = detail
        if not self.loaded:
            gap["state"] = self.file.problem
        if cause == "clock_jump":
            gap["clock"] = {
                "last_record_ts": gaps.iso(st.last_ts),
                "wall_now": gaps.iso(now),
                "wall_behind_s": round((st.last_ts or now) - now, 3),
                "note": "the wall clock is earlier than the last record before the gap",
            }
        gap["camera_faults"] = gaps.faults_overlapping(st.faults, st.last_ts, now)
        # faults still open when the previous run ended are listed above; this run re-detects its own
        st.faults = [f for f in st.faults if f.end is not None]
        self._gap, self._before = gap, dict(st.energy)
        self._after, self._why = {}, {}
        self._store_pending()
        self.save()

    def arm_energy_timeout(self) -> None:
        """Start the wait for the meters (call once the producers run)."""
        longest = max(self._expected.values(), default=0.0)
        self._wait_s = min(self.settings.continuity.energy_timeout, 2 * longest + 10.0)
        self._deadline = self.mono() + self._wait_s

    def _store_pending(self) -> None:
        if self._gap is None:
            self.state.pending_gap = None
            return
        self.state.pending_gap = {
            **self._gap,
            "_before": {k: [r.kwh, r.ts, r.seq] for k, r in self._before.items()},
            "_after": dict(self._after),
            "_expected": sorted(self._expected),
        }

    def _maybe_complete(self, *, timed_out: bool = False, why: str | None = None) -> None:
        gap = self._gap
        if gap is None or gap["to"] is None:
            if gap is not None and why is not None:  # stopping before any commit: nothing is "after"
                gap["to"] = {"seq": None, "ts": None}
            else:
                return
        if not timed_out and why is None and not set(self._expected) <= set(self._after):
            return
        missing = {
            k: why or self._why.get(k, f"no good reading within {self._waited():.0f} s after start")
            for k in self._expected
            if k not in self._after
        }
        self._gap = None
        self._emit_gap(gap, self._before, self._after, missing, list(self._expected))
        self.save()

    def _waited(self) -> float:
        return self._wait_s if self._deadline is not None else 0.0

    def _emit_gap(
        self,
        gap: dict[str, Any],
        before: dict[str, EnergyReading],
        after: dict[str, float],
        why: dict[str, str],
        expected: list[str],
    ) -> None:
        start, end = gap["from"].get("ts"), (gap.get("to") or {}).get("ts")
        if gap.get("duration_s") is None and start and end and gap["cause"] != "clock_jump":
            gap["duration_s"] = round(_parse_iso(end) - _parse_iso(start), 3)
        gap.setdefault("duration_s", None)
        start_ts = gap["from"].get("ts")
        gap["energy"] = gaps.energy_entries(expected, before, after, why, _parse_iso(start_ts) if start_ts else None)
        gap.setdefault("gap_id", uuid.uuid4().hex[:16])
        alarm = gaps.dark_alarm(gap, self.settings.continuity.dark_site_kwh)
        if alarm is not None:
            alarm["gap_id"] = gap["gap_id"]
            log.warning("continuity: %s", alarm["text"])
        # kept until the gap record is seen committed (on_commit), so a stop in between re-sends it
        self.state.pending_gap = {"_emitted": gap, "_alarm": alarm}
        self._dirty = self._urgent = True
        self._emit_final(gap, alarm)

    def _emit_final(self, gap: dict[str, Any], alarm: dict[str, Any] | None) -> None:
        self.emit(Record("agent", Kind.EVENT, gap))
        if alarm is not None:
            self.emit(Record("agent", Kind.ALARM, alarm))

    # --------------------------------------------------------------- commits
    def on_commit(self, batch: Sequence[CommittedLike]) -> None:
        """Commit subscriber: runs on the event loop after every committed batch."""
        st = self.state
        for c in batch:
            rec = c.record
            if c.seq <= st.last_seq:
                continue
            if not self._seen_this_run:
                self._seen_this_run = self._urgent = True
            st.last_seq, st.last_ts = c.seq, rec.ts
            if self._gap is not None and self._gap["to"] is None:
                self._gap["to"] = {"seq": c.seq, "ts": gaps.iso(rec.ts)}
            if self._jump is not None:
                jump, self._jump = self._jump, None
                jump["to"] = {"seq": c.seq, "ts": gaps.iso(rec.ts)}
                self._emit_gap(jump, {}, {}, {}, [])
            if rec.kind is Kind.EVENT and rec.source == "agent":
                self._own_event(rec.payload)
            if rec.kind is Kind.TELEMETRY:
                self._energy(c.seq, rec)
            elif rec.kind is Kind.ALARM and rec.payload.get("alarm") == "tamper":
                self._fault(rec)
        self._dirty = True
        if batch:
            now = self.clock()
            if not self._history or now - self._history[-1][0] >= HISTORY_EVERY_S:
                self._history.append((now, st.last_seq))
        self._maybe_complete()

    def _own_event(self, payload: dict[str, Any]) -> None:
        """Our own records coming back committed: only now may the state forget them."""
        event = payload.get("event")
        pending = self.state.pending_gap
        if event == "gap" and pending and pending.get("_emitted", {}).get("gap_id") == payload.get("gap_id"):
            self.state.pending_gap = None
            self._urgent = True
        elif event == "config_applied" and self._config_due is not None and payload.get("audit_id") == self._config_due[0]:
            _, cfg = self._config_due
            self._config_due = None
            self.state.config_hash, self.state.file_hash, self.state.config_keys = (
                cfg.hash,
                cfg.file_hash,
                cfg.keys,
            )  # shared, never mutated
            self._urgent = True

    def _energy(self, seq: int, rec: Record) -> None:
        good, bad = energy_readings(rec.payload)
        for point, kwh in good.items():
            key = f"{rec.source}/{point}"
            if key not in self.state.energy:
                self._urgent = True
            self.state.energy[key] = EnergyReading(kwh, rec.ts, seq)
            if self._gap is not None and key not in self._after:
                self._after[key] = kwh
                self._store_pending()
        for point, reason in bad.items():
            self._why[f"{rec.source}/{point}"] = reason

    def _fault(self, rec: Record) -> None:
        kind = str(rec.payload.get("kind", ""))
        alarm = "camera_lost" if kind == "signal_lost" else "camera_tamper"
        open_ = next((f for f in self.state.faults if f.source == rec.source and f.kind == kind and f.end is None), None)
        if rec.payload.get("state") == "raised" and open_ is None:
            self.state.faults.append(CameraFault(rec.source, alarm, kind, rec.ts))
        elif rec.payload.get("state") == "cleared" and open_ is not None:
            open_.end = rec.ts
        cutoff = self.clock() - FAULT_KEEP_S
        faults = [f for f in self.state.faults if f.end is None or f.end >= cutoff]
        self.state.faults = faults[-FAULT_KEEP_N:]

    # -------------------------------------------------------------- the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Periodic duties: save the state, end the wait for meters, watch the wall clock."""
        while not stop.is_set():
            try:
                self.tick(save=False)
                if self._save_due():
                    # fsync can take long on an SD card: off the loop (the document is taken here)
                    await asyncio.to_thread(self._write, self._snapshot())
            except Exception:  # a bug here must not end the loop (nor the agent)
                log.exception("continuity: periodic duties failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)

    def tick(self, save: bool = True) -> None:
        if self._deadline is not None and self._gap is not None and self.mono() >= self._deadline:
            self._maybe_complete(timed_out=True)
        self._check_clock()
        if save and self._save_due():
            self.save()

    def _save_due(self) -> bool:
        return self._dirty and (self._urgent or self.mono() - self._saved_mono >= self.settings.continuity.state_interval)

    def _check_clock(self) -> None:
        wall, mono = self.clock(), self.mono()
        offset = wall - mono
        jump = offset - self._offset
        if abs(jump) < self.settings.continuity.clock_jump_s:
            return
        self._offset = offset
        expected = wall - jump
        log.warning("continuity: the wall clock jumped by %+.3f s", jump)
        self._jump = {
            "event": "gap",
            "cause": "clock_jump",
            "from": {"seq": self.state.last_seq, "ts": gaps.iso(self.state.last_ts)},
            "to": None,
            "duration_s": None,
            "clock": {
                "wall_before": gaps.iso(expected),
                "wall_after": gaps.iso(wall),
                "jump_s": round(jump, 3),
                "detected_by": "monotonic vs wall clock",
            },
            "camera_faults": [],
        }

    # ------------------------------------------------------------ link down
    def on_link_lost(self, lost_at: float) -> None:
        """Optional, from the uplink: pins the exact seq and energy at the moment of loss."""
        self._link_lost = (lost_at, self.state.last_seq, dict(self.state.energy))

    def on_link_restored(self, lost_at: float, restored_at: float) -> dict[str, Any]:
        """The uplink reconnected: a ``link_down`` gap. Records committed meanwhile were kept in
        the buffer and are being backfilled; the record says how many."""
        pinned = self._link_lost if self._link_lost and abs(self._link_lost[0] - lost_at) < 1.0 else None
        self._link_lost = None
        if pinned is not None:
            seq_lost, exact = pinned[1], True
        else:
            seq_lost, exact = self._seq_at(lost_at), False
        seq_now = self.state.last_seq
        gap: dict[str, Any] = {
            "event": "gap",
            "cause": "link_down",
            "from": {"seq": seq_lost, "ts": gaps.iso(lost_at)},
            "to": {"seq": seq_now, "ts": gaps.iso(restored_at)},
            "duration_s": round(restored_at - lost_at, 3),
            "backfilled": max(seq_now - seq_lost, 0),
            "note": "the gateway kept recording; records committed meanwhile were buffered and are being sent now",
            "camera_faults": gaps.faults_overlapping(self.state.faults, lost_at, restored_at),
        }
        if not exact:
            gap["from"]["seq_within_s"] = HISTORY_EVERY_S
        if pinned is not None:
            expected = sorted(set(pinned[2]) | set(self._expected))
            after = {k: r.kwh for k, r in self.state.energy.items()}
            gap["energy"] = gaps.energy_entries(expected, pinned[2], after, {})
        else:
            gap["energy"] = []
            gap["energy_note"] = "energy readings during the outage are in the backfilled records"
        self.emit(Record("agent", Kind.EVENT, gap))
        return gap

    def _seq_at(self, ts: float) -> int:
        """Last seq committed at or before ``ts``, from the sampled history (5 s resolution)."""
        i = bisect.bisect_right([t for t, _ in self._history], ts)
        return self._history[i - 1][1] if i else (self._history[0][1] if self._history else self.state.last_seq)

    # --------------------------------------------------------------- config
    def config_applied(
        self,
        cfg: AppliedConfig,
        trigger: str,
        *,
        pending_restart: list[str] | None = None,
        rejected_keys: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``config_applied`` payload for a start or reload; remembers the key map (not values)."""
        st = self.state
        extra: dict[str, Any] = {}
        if trigger == "start":
            extra["previous_hash"] = st.config_hash
            if st.config_hash is None:
                changed: list[str] | None = None
                extra["previous"] = (
                    "no config recorded before (first start)" if not self.loaded else "previous config not recorded"
                )
            else:
                changed = changed_keys(st.config_keys, cfg.keys) if st.config_keys else None
                extra["changed_while_stopped"] = cfg.hash != st.config_hash or cfg.file_hash != st.file_hash
        else:
            changed = changed_keys(st.config_keys, cfg.keys)
        if pending_restart:
            extra["pending_restart"] = pending_restart
        # the state takes the new config only once this record is seen committed (_own_event): a stop
        # in between leaves the old hash, so the next start records the change instead of losing it
        audit_id = uuid.uuid4().hex[:16]
        self._config_due = (audit_id, cfg)
        return applied_event(cfg, trigger, changed, audit_id=audit_id, **extra)

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._expected = configured_energy_points(settings) if self._gap is None else self._expected

    # ----------------------------------------------------------------- stop
    def finish(self) -> None:
        """Clean stop, before the last flush: write an incomplete start gap with what is known."""
        if self._gap is not None:
            self._maybe_complete(why="the agent stopped before the meter answered")

    def close(self) -> None:
        """Clean stop, after the last flush: the state is exact from here."""
        self.save()


def _parse_iso(text: str) -> float:
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (int(frac) / 1000 if frac else 0.0)
