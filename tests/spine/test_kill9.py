"""Power-cut simulation: SIGKILL the agent during ingest and drain, over and over.

Every round must count: the agent of that round must start, get its start to the broker,
commit more records and be killed with records still unacknowledged (a backlog is being
drained while new records are ingested: ``uplink.max_rate`` is below the record rate). After
every kill the database must pass SQLite's integrity check. At the end one clean run drains
the rest, and the stream the subscriber received must hold every committed seq (none lost),
duplicates only as at-least-once allows (same content, and no more than what can be in flight
or not yet acknowledged to the buffer at a kill, docs/buffer.md "How many duplicates"), each kind
in seq order, one unbroken verified chain, and one ``agent_started`` per run, each after the
first saying the previous run crashed. The long version is ``python -m bench.kill_soak``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.killrounds import DUPLICATES_PER_KILL, KillRounds

ROUNDS = 20


def test_sigkill_during_ingest_and_drain(tmp_path: Path) -> None:
    rig = KillRounds(tmp_path)
    try:
        for _ in range(ROUNDS):
            rnd = rig.round()
            assert not rnd.problems, rnd.problems
        check, starts, rc = rig.finish()
    finally:
        rig.close()
    assert rc == 0, "the final clean run did not stop cleanly"
    assert check.committed > ROUNDS * 200, f"only {check.committed} records committed in {ROUNDS} rounds"
    assert check.lost == [], f"{len(check.lost)} committed seqs never reached the broker, first {check.lost[:10]}"
    assert check.dropped_on_record == 0, "nothing may be evicted here: the buffer is far below its cap"
    assert check.conflicts == [], f"seqs delivered with two different contents: {check.conflicts[:10]}"
    assert rig.left <= 3, f"{rig.left} records still in the buffer after the final run drained: acks are not kept"
    assert check.duplicates <= ROUNDS * DUPLICATES_PER_KILL, f"{check.duplicates} duplicates: acks are not kept"
    assert check.out_of_order == 0, f"{check.out_of_order} records arrived behind a later seq of their kind"
    assert check.verify_problems == [], check.verify_problems[:10]
    assert len(starts) == ROUNDS + 1, f"{len(starts)} agent starts reached the broker, expected {ROUNDS + 1}"
    ended = [s["previous_run"]["ended"] for s in starts[1:]]
    assert ended == ["crash"] * ROUNDS, ended
    assert all(s["previous_shutdown"] == "unclean" for s in starts[1:])
