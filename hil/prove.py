"""``python -m hil.prove [SCENARIO_BREAK...]``: show that each fault scenario fails without its feature.

For each entry of ``BREAKS`` the repository is copied (code only) to a temporary directory,
ONE edit switches the feature off in the copy, and the scenario runs against it; it must FAIL.
An edit whose text is no longer in the code is reported as stale (the code moved: update the
entry), never silently skipped. The results are the table in docs/hil.md. Not part of the
suite: each break costs a full scenario run (~20–60 s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
CODE = ("agent", "buffer", "config", "drivers", "hil", "rules", "vision")


class Break(NamedTuple):
    scenario: str
    path: str
    old: str
    new: str
    what: str


_RELEASE = ("agent/uplink/drain.py", "        await self.buffer.release_all()", "        pass  # BREAK")
_GAP = (
    "agent/continuity/tracker.py",
    '        self.emit(Record("agent", Kind.EVENT, gap))\n        return gap',
    "        return gap  # BREAK",
)

BREAKS: dict[str, Break] = {
    "device_dies": Break(
        "device_dies",
        "drivers/device.py",
        "        else:\n            h.consecutive_failures += 1",
        "        else:\n            return  # BREAK\n            h.consecutive_failures += 1",
        "a failed poll is never counted (the device is never seen to fail)",
    ),
    "camera_frozen": Break(
        "camera_frozen",
        "vision/analytics/tamper.py",
        '            found.add("frozen")',
        "            pass  # BREAK",
        "no frozen detection",
    ),
    "camera_covered": Break(
        "camera_covered",
        "vision/analytics/tamper.py",
        "        if mean < self.settings.dark_level or std < 6.0:",
        "        if False:  # BREAK",
        "no covered detection",
    ),
    "camera_covered_precedence": Break(
        "camera_covered",
        "vision/analytics/tamper.py",
        ' and "covered" not in found:',
        ":  # BREAK",
        "a covered lens also raises frozen",
    ),
    "camera_lost": Break(
        "camera_lost",
        "vision/runtime.py",
        '                    pipeline.source_state(True, source.error or "no frames")',
        "                    pass  # BREAK",
        "the worker never reports a lost stream",
    ),
    "serial_noise": Break(
        "serial_noise",
        "drivers/dlt645_driver.py",
        "            line.noise += decoder.noise + decoder.pending_noise()",
        "            line.noise += 0  # BREAK",
        "line noise not counted",
    ),
    "serial_noise_noretry": Break(
        "serial_noise",
        "drivers/device.py",
        "        attempts = 1 if in_backoff else 1 + self.dev.retries",
        "        attempts = 1  # BREAK",
        "no retry after a bad answer",
    ),
    "disk_full": Break(
        "disk_full",
        "buffer/boundary.py",
        "        return notes, self._backlog.counters()",
        "        return [], self._backlog.counters()  # BREAK",
        "losses counted but no records_dropped written",
    ),
    "broker_blackhole": Break("broker_blackhole", *_RELEASE, "leased, unacked records never leased again"),
    "broker_flap": Break("broker_flap", *_GAP, "no gap record on reconnect"),
    "link_drop_and_delay": Break("link_drop_and_delay", *_GAP, "no gap record on reconnect"),
    "clock_unsynced": Break(
        "clock_unsynced",
        "buffer/store.py",
        '            "synced": bool(rec.clock_synced),',
        '            "synced": True,  # BREAK',
        "every record stored as synced",
    ),
    "power_cut": Break(
        "power_cut",
        "agent/daemon.py",
        '        self.previous_shutdown = "clean" if opened.previous_shutdown_clean else "unclean"',
        '        self.previous_shutdown = "clean"  # BREAK',
        "every previous shutdown called clean",
    ),
}


def prove(name: str, base: Path) -> dict[str, object]:
    """Break one feature in a copy of the code and run its scenario there."""
    b = BREAKS[name]
    root = base / name
    for part in CODE:
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = root / b.path
    text = target.read_text()
    if text.count(b.old) != 1:
        return {
            "break": name,
            "scenario": b.scenario,
            "failed": None,
            "detail": f"stale: the edit's text is not in {b.path} once",
        }
    target.write_text(text.replace(b.old, b.new))
    report = root / "report.json"
    cmd = [sys.executable, "-m", "hil", "run", str(REPO / "hil" / "scenarios" / f"{b.scenario}.yaml"), "--json", str(report)]
    cmd += ["--workdir", str(root)]
    with open(root / "run.log", "wb") as log:
        subprocess.run(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, timeout=600, check=False)
    try:
        (result,) = json.loads(report.read_text())
    except (OSError, ValueError):
        return {"break": name, "scenario": b.scenario, "failed": None, "detail": f"no report (see {root / 'run.log'})"}
    failed = [f"{k}: {v['detail']}" for k, v in result["checks"].items() if not v["ok"]]
    return {"break": name, "scenario": b.scenario, "what": b.what, "failed": bool(failed), "detail": "; ".join(failed)[:400]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hil.prove", description=__doc__.split("\n")[0])
    ap.add_argument("breaks", nargs="*", help=f"default: all of {', '.join(BREAKS)}")
    ap.add_argument("--jobs", type=int, default=3)
    args = ap.parse_args(argv)
    names = args.breaks or list(BREAKS)
    unknown = [n for n in names if n not in BREAKS]
    if unknown:
        print(f"unknown break(s) {unknown}; known: {', '.join(BREAKS)}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="hil-prove-"))
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: prove(n, base), names))
    for r in results:
        verdict = "NOT RUN" if r["failed"] is None else "FAILED (as it must)" if r["failed"] else "PASSED (not caught!)"
        print(f"{r['break']:<28} {r['scenario']:<20} {verdict}: {r['detail']}")
    return 0 if all(r["failed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
