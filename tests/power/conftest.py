"""Fixtures for power tests: a real upsd with dummy-ups, stopped even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.power.helpers import STARTED
from tests.support.nut import NutServer


@pytest.fixture
def nut(tmp_path: Path) -> Iterator[NutServer]:
    server = NutServer(tmp_path / "nut").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_leaked_upsd() -> Iterator[None]:
    yield
    while STARTED:
        agent = STARTED.pop()
        if agent.proc.poll() is None:
            agent.kill()
    while NutServer.started:
        NutServer.started.pop().stop()
