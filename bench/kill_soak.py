"""SIGKILL soak: kill the real agent ``-9`` mid-ingest and mid-drain, round after round.

    .venv/bin/python -m bench.kill_soak [--rounds 200] [--rate 2000] [--seed 1]

Each round starts ``python -m agent.cli run`` with a load generator committing ``--rate`` records/s
while the uplink may send only a quarter of that (a backlog is always being drained), waits
until the agent's start reached the broker and a backlog is waiting, then kills it at a random
moment (``tests/support/killrounds.py``, the same rig as ``tests/spine/test_kill9.py``). A round
that did not start, commit, or have records unacknowledged at the kill is a failed round. At the
end one clean run drains the rest and a subscriber that kept every message reports lost,
duplicated and out-of-order seqs, and ``agent.verify`` checks the chain. Exit status 1 on any
failed round, loss, conflicting duplicate, disorder, chain problem or missing start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tests.support.killrounds import DUPLICATES_PER_KILL, KillRounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--rate", type=int, default=2000, help="records/s committed by the load generator")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-delay", type=float, default=1.0, help="kill up to this many s after the backlog formed")
    ap.add_argument("--keep", type=Path, help="keep the work directory here (logs, database)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kill-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rig = KillRounds(work, rate=args.rate, seed=args.seed)
    bad_rounds: list[str] = []
    try:
        for i in range(args.rounds):
            rnd = rig.round(max_delay=args.max_delay)
            bad_rounds += rnd.problems
            if i % 10 == 9 or rnd.problems:
                print(
                    f"round {i + 1}/{args.rounds} t={time.monotonic() - t0:6.0f}s committed={rnd.seq_at_kill}"
                    f" unacked at kill={rnd.pending_at_kill} start={rnd.started_after_s:.2f}s"
                    f" delivered={rig.sub.count()} {'; '.join(rnd.problems)}",
                    flush=True,
                )
        t_drain = time.monotonic()
        check, starts, rc = rig.finish(timeout=600)
        drain_s = time.monotonic() - t_drain
    finally:
        rig.close()
    ended = [s["previous_run"]["ended"] for s in starts[1:]]
    figures = {
        "rounds": args.rounds,
        "rate_per_s": args.rate,
        "wall_s": round(time.monotonic() - t0),
        "final_drain_s": round(drain_s, 1),
        "failed_rounds": len(bad_rounds),
        "unacked_at_kill_min": min(r.pending_at_kill for r in rig.rounds),
        "unacked_at_kill_median": sorted(r.pending_at_kill for r in rig.rounds)[len(rig.rounds) // 2],
        "starts_seen": len(starts),
        "starts_after_crash": ended.count("crash"),
        "final_exit": rc,
        "left_in_buffer": rig.left,
        "duplicates_allowed_max": args.rounds * DUPLICATES_PER_KILL,
        "stream": check.summary(),
    }
    print(json.dumps(figures, indent=1))
    ok = (
        not bad_rounds
        and check.ok()
        and rc == 0
        and len(starts) == args.rounds + 1
        and ended == ["crash"] * args.rounds
        and check.duplicates <= args.rounds * DUPLICATES_PER_KILL
        and rig.left <= 3
    )
    for line in bad_rounds[:20]:
        print("PROBLEM", line)
    print("RESULT", "OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
