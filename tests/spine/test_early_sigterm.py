"""A stop asked for in the agent's first moments (``systemctl stop`` right after a start) is a clean stop."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.spine.helpers import buffered_payloads
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.wait import wait_until

EVENT = 1


def caught(pid: int) -> set[int]:
    """The signals the process has a handler for (SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    return set()


def test_sigterm_while_importing_stops_cleanly_after_start_up(tmp_path: Path, agents) -> None:
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", free_port(), buffer_path=db)
    agent = AgentProcess(cfg)
    agents.append(agent)
    wait_until("the early handler", lambda: signal.SIGTERM in caught(agent.proc.pid), timeout=30, interval=0.001)
    os.kill(agent.proc.pid, signal.SIGTERM)
    assert agent.proc.wait(30) == 0, agent.output()  # not -15: not killed mid-start
    log = agent.output()
    assert "a SIGTERM came in during start-up" in log and "stopped cleanly" in log, log
    events = [p.get("event") for p in buffered_payloads(db, EVENT)]
    assert "agent_started" in events and "agent_stopping" in events
    # and the next start reads it as what it was: a clean stop, not a crash
    again = AgentProcess(cfg, log=tmp_path / "again.log")
    agents.append(again)
    wait_until("the second start", lambda: "running: gateway" in again.output(), timeout=30)
    assert again.terminate() == 0
    started = [p for p in buffered_payloads(db, EVENT) if p.get("event") == "agent_started"]
    assert started[-1]["previous_run"]["ended"] == "clean", started[-1]["previous_run"]
