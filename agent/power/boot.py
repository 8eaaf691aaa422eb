"""Boot and previous-run evidence for the ``agent_started`` record (docs/evidence.md).

The kernel's boot id tells "the process died but the machine kept running" (same id) from
"the machine went down" (new id). The run-state file of the previous run tells whether it
stopped cleanly, was on battery, or had stopped pinging the systemd watchdog; systemd's
``ExecStopPost=headframe mark-stopped`` adds the service result when it is available.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any

from agent.power.runstate import BOOT_COUNT_NAME, RUN_STATE_NAME, atomic_write_json, read_json, remove_stale_temp

log = logging.getLogger("headframe.power")

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
#: TEST HOOK: a simulated reboot (see read_boot_id)
FAKE_BOOT_ID_ENV = "HEADFRAME_FAKE_BOOT_ID"
UPTIME_PATH = Path("/proc/uptime")

#: Power states that mean "the last run knew mains was gone".
MAINS_DOWN_STATES = ("on_battery", "low_battery")
#: systemd SERVICE_RESULT values that mean the process died rather than stopped.
CRASH_RESULTS = ("signal", "core-dump", "exit-code", "timeout", "oom-kill", "resources", "protocol")


def iso(ts: float | None = None) -> str:
    """UTC ISO-8601 with milliseconds and Z, like every record's ``ts``."""
    when = dt.datetime.fromtimestamp(time.time() if ts is None else ts, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def read_boot_id(path: Path = BOOT_ID_PATH) -> str | None:
    """The kernel's id of this boot. ``HEADFRAME_FAKE_BOOT_ID`` is a TEST HOOK (a simulated
    reboot: the HIL rig and tests cannot reboot the machine); never set it on a gateway."""
    fake = os.environ.get(FAKE_BOOT_ID_ENV)
    if fake:
        return fake
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def read_uptime(path: Path = UPTIME_PATH) -> float | None:
    try:
        return round(float(path.read_text().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


def count_boot(state_dir: Path, boot_id: str | None) -> int | None:
    """Boots seen by this gateway: +1 the first time a new boot id starts the agent."""
    path = Path(state_dir) / BOOT_COUNT_NAME
    doc = read_json(path) or {}
    stored = doc.get("count")
    count = stored if isinstance(stored, int) else 0
    if boot_id is None:
        return count or None
    if doc.get("boot_id") != boot_id:
        count += 1
        atomic_write_json(path, {"boot_id": boot_id, "count": count, "first_seen": iso()})
    return count


def classify(prev: dict[str, Any] | None, boot_id: str | None) -> tuple[str, str]:
    """How the previous run ended, from its run state: (ended, a sentence for a person)."""
    if prev is None:
        return "unknown", "no run state from a previous run (first start, or the state file was lost)"
    same_boot = boot_id is not None and prev.get("boot_id") == boot_id
    machine = "the machine kept running" if same_boot else "the machine was restarted since"
    power = prev.get("power") or {}
    result = prev.get("service_result")
    clean = bool(prev.get("clean"))
    if power.get("state") in MAINS_DOWN_STATES or prev.get("stopping_reason") == "mains_failure":
        how = "stopped cleanly" if clean else "ended without a clean stop"
        return "mains_failure", (
            f"mains was lost (power {power.get('state', 'failing')} since {power.get('since', '?')}); the agent {how}; {machine}"
        )
    if result == "watchdog" or prev.get("stopping_reason") == "watchdog":
        return "watchdog", f"systemd's watchdog killed the agent (service result {result or 'watchdog'}); {machine}"
    if clean:
        return "clean", f"stopped cleanly ({prev.get('stopping_reason', 'requested')}) at {prev.get('stopped', '?')}"
    withheld = prev.get("watchdog_withheld")
    if same_boot and withheld and result is None:
        return "watchdog", (
            f"the agent stopped pinging the watchdog ({withheld.get('why')}) at "
            f"{withheld.get('since')} and then died on the same boot: systemd killed it"
        )
    if result in CRASH_RESULTS:
        status = prev.get("exit_status")
        return "crash", f"the process died (service result {result}, exit status {status}); {machine}"
    if same_boot:
        return "crash", "the process died without a clean stop while the machine kept running (same boot id)"
    return "unknown", "no shutdown record and a new boot id: the gateway was switched off or unplugged"


#: ``build_start_evidence(prev=...)`` default: claim the run state there and then
UNCLAIMED: Any = object()


def claim_run_state(state_dir: Path) -> dict[str, Any] | None:
    """Read the previous run's state and at once replace it with this run's (not clean).

    Call it before anything at start that can fail: a start that dies early must never leave
    the previous run's ``clean: true`` standing, or the next start would call the dark period
    a clean stop. If the new state cannot be written the old file is removed (the next start
    then says "unknown", never "clean"). Returns the previous run's state for
    ``build_start_evidence``.
    """
    state_dir = Path(state_dir)
    path = state_dir / RUN_STATE_NAME
    remove_stale_temp(state_dir)
    prev = read_json(path)
    doc = {
        "boot_id": read_boot_id(),
        "pid": os.getpid(),
        "started": iso(),
        "power": {"state": "unknown"},
        "clean": False,
        "stopping_reason": None,
    }
    try:
        atomic_write_json(path, doc)
    except OSError as exc:
        log.error(
            "power: cannot write the run state %s (%s); removing the previous one so that it cannot vouch for a clean stop",
            path,
            exc,
        )
        try:
            path.unlink(missing_ok=True)
        except OSError as exc2:
            log.error("power: cannot remove %s either (%s): the next start may misread how this run ended", path, exc2)
    return prev


def build_start_evidence(
    state_dir: Path, *, last_seq: int | None = None, last_ts: str | None = None, prev: dict[str, Any] | None = UNCLAIMED
) -> dict[str, Any]:
    """The ``boot`` and ``previous_run`` parts of ``agent_started``; call once per start.

    ``prev`` is what ``claim_run_state`` returned at the very start of the run; without it
    the run state is claimed here (read the previous run's, write this run's, not clean), so
    that anything from here on that is not a clean stop is classified as such on the next
    start. ``RunState.load(state_dir)`` then gives the handle for later updates.
    """
    state_dir = Path(state_dir)
    if prev is UNCLAIMED:
        prev = claim_run_state(state_dir)
    boot_id = read_boot_id()
    ended, detail = classify(prev, boot_id)
    previous: dict[str, Any] = {
        "ended": ended,
        "detail": detail,
        "last_seq": last_seq,
        "last_ts": last_ts or (prev or {}).get("stopped"),
    }
    if prev is not None:
        previous["started"] = prev.get("started")
        previous["boot_id"] = prev.get("boot_id")
        if prev.get("service_result"):
            previous["service_result"] = prev["service_result"]
    boot = {"boot_id": boot_id, "boot_count": count_boot(state_dir, boot_id), "uptime_s": read_uptime()}
    return {"boot": boot, "previous_run": previous}
