"""The simulated site (``python -m hil site``) stops everything it started: on SIGTERM, SIGHUP
and SIGINT through its own cleanup, and when it is SIGKILLed through the kernel's parent-death
signal. Real processes throughout: mosquitto, socat pty pairs, the agent and its camera workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.agentproc import REPO
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(
    not (shutil.which("socat") and shutil.which("mosquitto")), reason="socat and mosquitto come from scripts/setup.sh"
)


def started_site(tmp_path: Path, agent: bool) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "site.out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with_agent = ["--agent", "--watch"] if agent else []
    with open(out, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hil", "site", "--workdir", str(tmp_path / "site"), *with_agent, "--duration", "300"],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return proc, out


# the full rig (agent, its camera workers, the live view) for SIGTERM and SIGKILL; SIGHUP and
# SIGINT take the same handler as SIGTERM, so the rig without the agent (seconds cheaper) shows them
@pytest.mark.parametrize(
    ("sig", "agent"),
    [(signal.SIGTERM, True), (signal.SIGKILL, True), (signal.SIGHUP, False), (signal.SIGINT, False)],
    ids=["SIGTERM", "SIGKILL", "SIGHUP", "SIGINT"],
)
def test_site_stops_everything_it_started(tmp_path: Path, sig: signal.Signals, agent: bool) -> None:
    site, out = started_site(tmp_path, agent)
    me = psutil.Process(site.pid)
    children: list[psutil.Process] = []
    try:
        log = tmp_path / "site" / "agent.log"
        if agent:
            # up = the agent runs its producers (vision workers are its children) and the view sees records
            wait_until("the agent running", lambda: log.exists() and "running: gateway" in log.read_text(), timeout=60)
            wait_until("the live view showing records", lambda: "seq" in out.read_text(errors="replace"), timeout=30)
        else:
            wait_until("the site up", lambda: "config:" in out.read_text(errors="replace"), timeout=60)
        children = me.children(recursive=True)
        names = sorted({c.name() for c in children})
        # what the rig starts: the broker, two socat pty pairs, the agent (python) and its camera workers
        assert "mosquitto" in names and sum(c.name() == "socat" for c in children) == 2, names
        if agent:
            agents = [c for c in me.children() if "agent.cli" in " ".join(c.cmdline())]
            assert len(agents) == 1 and agents[0].children(recursive=True), "the agent and its camera workers"
        os.kill(site.pid, sig)
        site.wait(40)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left running after {sig.name}: {[(p.pid, p.name()) for p in alive]}"
        if sig != signal.SIGKILL:
            assert site.returncode == 0, out.read_text(errors="replace")[-2000:]
            assert f"stopping the simulated site ({sig.name})" in out.read_text(errors="replace")
            # the agent was stopped, not orphaned: it recorded a clean stop
            assert not agent or "stopped cleanly" in log.read_text()
    finally:  # a failed run must not leave the rig behind either
        if site.poll() is None:
            children += me.children(recursive=True)
            site.kill()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
