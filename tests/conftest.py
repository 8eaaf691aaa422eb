"""Suite-wide fixtures: a real mosquitto broker and helpers to run the agent as a process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agentproc import AgentProcess
from tests.support.broker import MosquittoBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """An anonymous broker on a free loopback port."""
    b = MosquittoBroker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture(autouse=True)
def _no_leaked_brokers() -> Iterator[None]:
    """Stop every broker a test started, even when the test failed half-way."""
    yield
    while MosquittoBroker.started:
        MosquittoBroker.started.pop().stop()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Every agent a test starts is killed at teardown, also when the test failed half-way."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        if agent.proc.poll() is None:
            agent.kill()
