"""Helpers for power tests: run the agent with a power section, read what it committed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.spine.helpers import buffered_payloads
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.wait import wait_until

ALARM, EVENT, HEALTH = 0, 1, 3
#: agents started by these tests; conftest kills any still running when a test ends (even a failed one)
STARTED: list[AgentProcess] = []


def agent_config(tmp_path: Path, power: dict[str, Any] | None = None, name: str = "c.yaml") -> Path:
    """A config whose broker port has nobody listening: every record stays in the buffer to be read."""
    extra = {"power": power} if power else None
    return write_config(tmp_path / name, free_port(), buffer_path=tmp_path / "buf.db", extra=extra, health_interval="0.5s")


def wait_for(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_until(what, fn, timeout, interval=0.05)


def payloads(tmp_path: Path, kind: int) -> list[dict[str, Any]]:
    db = tmp_path / "buf.db"
    return buffered_payloads(db, kind) if db.exists() else []


def alarms(tmp_path: Path, state: str) -> list[dict[str, Any]]:
    return [p for p in payloads(tmp_path, ALARM) if p.get("alarm") == "mains_lost" and p.get("state") == state]


def events(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    return [p for p in payloads(tmp_path, EVENT) if p.get("event") == name]


def last_power_health(tmp_path: Path) -> dict[str, Any] | None:
    health = payloads(tmp_path, HEALTH)
    return health[-1].get("power") if health else None


def start_agent(tmp_path: Path, cfg: Path, tag: str) -> tuple[AgentProcess, dict[str, Any]]:
    """Start the agent; returns it and the payload of its own ``agent_started`` record."""
    before = len(events(tmp_path, "agent_started"))
    agent = AgentProcess(cfg, log=tmp_path / f"agent-{tag}.log")
    STARTED.append(agent)
    started = wait_for(lambda: events(tmp_path, "agent_started")[before:], 20, "agent_started")
    return agent, started[0]


def run_state(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "headframe-run.json").read_text())
