"""SIGKILL the real agent mid-ingest and mid-drain, round after round, and check the stream.

Used by ``tests/spine/test_kill9.py`` (20 rounds) and ``bench/kill_soak.py`` (200 and more).
The load generator commits faster than the uplink may send (``uplink.max_rate`` below the
record rate), so at every kill there is a backlog being drained *and* records being ingested.
A round counts only if the agent of that round started, got its ``agent_started`` event to the
broker (it committed and drained), committed more records, and died with records still
unacknowledged in the buffer. At the end one clean run without load drains everything, and
the subscriber, which kept every message, says what was lost, duplicated or out of order.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import MosquittoBroker
from tests.support.seqcheck import SeqSubscriber, StreamCheck, buffer_state, check_stream

#: Records unacknowledged by the broker at any instant (``uplink.inflight``).
WINDOW = 100
#: Acks reach the buffer in batches of up to this many (``agent.uplink.drain.ACK_BATCH``); what the
#: broker acknowledged but the buffer has not yet deleted is sent again after a kill.
ACK_BATCH = 500
#: Most records a kill may cause to be sent twice (docs/buffer.md, "How many duplicates"): a batch of
#: acks being written (up to ACK_BATCH + WINDOW) and what is in flight meanwhile (WINDOW).
DUPLICATES_PER_KILL = 2 * WINDOW + ACK_BATCH
#: A round kills only once this many records were committed in it and this many wait unacknowledged
#: (the drain may send a quarter of the record rate: the backlog grows while the round runs).
MIN_RECORDS = 200


@dataclass
class Round:
    """What one round did; ``problems`` is empty when it counted."""

    number: int
    seq_before: int
    seq_at_kill: int = 0
    pending_at_kill: int = 0
    started_after_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def integrity_ok(db_path: Path) -> bool:
    db = sqlite3.connect(db_path)
    try:
        return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
    finally:
        db.close()


class KillRounds:
    """A broker, a subscriber and an agent that is killed ``-9`` again and again."""

    def __init__(self, work: Path, *, rate: int = 2000, sources: int = 4, seed: int = 20261125) -> None:
        self.work = work
        self.rate = rate
        self.rng = random.Random(seed)
        self.broker = MosquittoBroker(work / "broker").start()
        self.sub = SeqSubscriber(self.broker).start()
        self.db = work / "buf.db"
        self.cfg = write_config(work / "agent.yaml", self.broker.port, buffer_path=self.db, inflight=WINDOW, max_rate=rate / 4)
        self.final_cfg = write_config(work / "final.yaml", self.broker.port, buffer_path=self.db, inflight=WINDOW)
        self.env = {
            "HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen",
            "LOADGEN_RATE": str(rate),
            "LOADGEN_SOURCES": str(sources),
        }
        self.rounds: list[Round] = []
        #: records still in the buffer after the final clean run (a few health records at most)
        self.left = -1

    def round(self, max_delay: float = 0.3, start_timeout: float = 30.0) -> Round:
        """Start the agent, wait until it is ingesting and draining, kill it at a random moment."""
        n = len(self.rounds)
        rnd = Round(n, buffer_state(self.db)[0])
        starts = self.sub.started()
        t0 = time.monotonic()
        agent = AgentProcess(self.cfg, env=self.env, log=self.work / f"agent-{n}.log")
        try:
            # this run's agent_started at the broker: the store opened, committed, and the drain runs
            deadline = t0 + start_timeout
            while self.sub.started() <= starts and time.monotonic() < deadline and agent.proc.poll() is None:
                time.sleep(0.02)
            rnd.started_after_s = time.monotonic() - t0
            if self.sub.started() <= starts:
                rnd.problems.append(f"round {n}: the agent's start never reached the broker ({rnd.started_after_s:.1f} s)")
            # and the load generator is committing while a backlog waits for the drain
            while time.monotonic() < deadline and agent.proc.poll() is None:
                last, pending = buffer_state(self.db)
                if last >= rnd.seq_before + MIN_RECORDS and len(pending) >= MIN_RECORDS:
                    break
                time.sleep(0.02)
            else:
                rnd.problems.append(f"round {n}: not ingesting with a backlog after {start_timeout} s")
            time.sleep(self.rng.uniform(0.0, max_delay))
        finally:
            agent.kill()
        rnd.seq_at_kill, pending = buffer_state(self.db)
        rnd.pending_at_kill = len(pending)
        if not integrity_ok(self.db):
            rnd.problems.append(f"round {n}: database damaged after SIGKILL")
        if rnd.seq_at_kill <= rnd.seq_before:
            rnd.problems.append(f"round {n}: nothing committed ({rnd.seq_before} -> {rnd.seq_at_kill})")
        if not pending:
            rnd.problems.append(f"round {n}: killed with nothing unacknowledged (not mid-drain)")
        if "Traceback" in agent.output():
            rnd.problems.append(f"round {n}: traceback in the agent's log {agent.log}")
        self.rounds.append(rnd)
        return rnd

    def finish(self, timeout: float = 120.0) -> tuple[StreamCheck, list[dict[str, Any]], int]:
        """One clean run without load drains the rest; returns the check, the starts and its exit code."""
        agent = AgentProcess(self.final_cfg, log=self.work / "final.log")
        starts = self.sub.started()
        deadline = time.monotonic() + timeout
        # drained: this run's start arrived and nothing older than a few health records is left
        while time.monotonic() < deadline and (self.sub.started() <= starts or len(buffer_state(self.db)[1]) > 3):
            time.sleep(0.1)
        rc = agent.terminate()
        last, pending = buffer_state(self.db)
        self.left = len(pending)
        self.sub.wait_for(set(range(1, last + 1)) - pending, timeout=30)
        check = check_stream(self.sub, last, pending, (self.work / "chain.key").read_bytes().strip())
        with self.sub._lock:
            starts_seen = [self.sub.starts[s] for s in sorted(self.sub.starts)]
        return check, starts_seen, rc

    def close(self) -> None:
        self.sub.stop()
        self.broker.stop()
