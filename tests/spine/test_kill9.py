"""Power-cut simulation: SIGKILL the agent during ingest and drain, over and over.

After every kill the database must pass SQLite's integrity check; at the end every seq that
was ever committed must have reached the broker at least once, each seq always with the
same content (never reused), and the delivered stream must form one unbroken chain.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from buffer import verify
from tests.spine.helpers import buffer_state, chain_key, integrity_ok
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker

ROUNDS = 20
ROOT = "headframe/test-site/gw-test/"


def test_sigkill_during_ingest_and_drain(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    broker = MosquittoBroker(tmp_path / "b").start()
    collector = Collector(broker, topics=[ROOT + "#"]).start()
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=db)
    env = {"HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen", "LOADGEN_RATE": "2000", "LOADGEN_SOURCES": "4"}
    for round_no in range(ROUNDS):
        agent = AgentProcess(cfg, env=env, log=tmp_path / f"agent-{round_no}.log")
        # kill at a random moment: some rounds while still starting, most while ingesting and draining
        time.sleep(rng.uniform(0.4, 1.6))
        agent.kill()
        assert integrity_ok(db), f"round {round_no}: database damaged after SIGKILL"
        last, pending = buffer_state(db)
        assert last >= len(pending)
        log = (tmp_path / f"agent-{round_no}.log").read_text()
        assert "Traceback" not in log, log
    # one clean run without load drains everything that is left
    agent = AgentProcess(cfg, log=tmp_path / "final.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(buffer_state(db)[1]) > 5:
        time.sleep(0.2)
    assert agent.terminate() == 0
    last, pending = buffer_state(db)
    expected = set(range(1, last + 1)) - pending
    records = collector.wait_for_seqs(expected, timeout=60)
    by_seq: dict[int, str] = {}
    for rec in records:
        assert by_seq.setdefault(rec["seq"], rec["chain"]) == rec["chain"], f"seq {rec['seq']} reused"
    assert last > ROUNDS * 200, "the rounds should have ingested a real amount of data"
    assert verify(records, chain_key(db)) == []
    starts = [r["payload"] for r in records if r["payload"].get("event") == "agent_started"]
    # some kills land before the store is even open; every start that got that far (after the
    # first) must have seen the kill, including the final clean-up run
    assert len(starts) >= ROUNDS // 2
    assert all(s["previous_shutdown"] == "unclean" for s in starts[1:])
    collector.stop()
    broker.stop()
