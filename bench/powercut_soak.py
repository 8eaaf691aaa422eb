"""Power-cut soak: cut the power under the real BufferStore many times and print what survived.

    .venv/bin/python -m bench.powercut_soak [--cuts 200] [--quiet-cuts 40] [--seed 1]

Phase 1 ("agent mix") drives the store like the agent: telemetry and health in 50 ms batches,
events now and then, alarms appended alone. Phase 2 ("quiet site") has no power_loss kinds at
all, so only WAL checkpoints make telemetry durable: it measures the worst case for
process_crash kinds. Exit status 1 if any check failed (see tests/support/powercut/harness.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from config.spine import PerKindDurability
from tests.support.powercut.harness import Figures, PowerCuts


def phase(name: str, work: Path, cuts: int, seed: int, **kw: object) -> Figures:
    t0 = time.monotonic()
    durability = PerKindDurability().model_dump()
    figures = PowerCuts(work, seed=seed, durability=durability, **kw).run(cuts)  # type: ignore[arg-type]
    print(f"== {name}: {cuts} rounds in {time.monotonic() - t0:.0f} s, durability {durability}")
    print(json.dumps(figures.summary(), indent=1))
    for line in figures.problems[:20]:
        print("PROBLEM", line)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, default=200, help="rounds with the agent's mix of kinds")
    ap.add_argument("--quiet-cuts", type=int, default=40, help="rounds with telemetry and health only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--long-quiet-cuts",
        type=int,
        default=0,
        help="quiet-site rounds of up to 40 s, with buffer.max_unsynced at its default and off (0)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="powercut-") as tmp:
        results = [phase("agent mix", Path(tmp) / "mix", args.cuts, args.seed)]
        if args.quiet_cuts:
            results.append(
                phase("quiet site", Path(tmp) / "quiet", args.quiet_cuts, args.seed + 1, quiet_site=True, max_duration=8.0)
            )
        if args.long_quiet_cuts:
            for window in (None, 0.0):
                name = "long quiet site, max_unsynced " + ("default (5 s)" if window is None else "off")
                results.append(
                    phase(
                        name,
                        Path(tmp) / f"long-{window}",
                        args.long_quiet_cuts,
                        args.seed + 2,
                        quiet_site=True,
                        max_duration=40.0,
                        max_unsynced=window,
                    )
                )
    bad = sum(len(f.problems) for f in results)
    print("RESULT", "FAIL" if bad else "OK", f"({bad} problems)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
