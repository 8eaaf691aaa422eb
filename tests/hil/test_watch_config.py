"""``python -m hil watch --config`` (what scripts/run-site.sh runs with a real config) connects as
the config says: real mosquitto with TLS and a password, a real agent publishing to it. The
password never shows in what the view prints; a wrong one is a clear refusal, not an empty view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker
from tests.support.certs import make_tls_files
from tests.support.wait import wait_until

SECRET = "w4tch-Pa55word-not-for-logs"


def run_watch(cfg: Path, out: Path, duration: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with open(out, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "hil", "watch", "--config", str(cfg), "--duration", str(duration)],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def test_watch_uses_the_configs_tls_and_credentials(tmp_path: Path, agents) -> None:
    tls = make_tls_files(tmp_path / "pki")
    broker = MosquittoBroker(tmp_path / "b", users={"gw": SECRET}, tls=tls).start()
    (tmp_path / "pw").write_text(SECRET + "\n")
    uplink = {"host": "localhost", "tls": {"ca_file": str(tls.ca)}, "username": "gw", "password_file": str(tmp_path / "pw")}
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", **uplink)
    agents.append(AgentProcess(cfg, log=tmp_path / "agent.log"))

    out = tmp_path / "watch.out"
    view = run_watch(cfg, out, duration=60)
    try:
        # the agent's records reach the view: health every second, and the retained online status
        wait_until("the view showing the agent's health", lambda: "health/agent" in out.read_text(errors="replace"), timeout=30)
    finally:
        view.terminate()
        view.wait(10)
    text = out.read_text(errors="replace")
    assert f"broker localhost:{broker.port} (TLS, user gw)" in text
    assert "seq" in text and SECRET not in text

    # the wrong password: the broker refuses, the view says so and exits 1
    (tmp_path / "pw").write_text("not-the-password")
    bad = run_watch(cfg, tmp_path / "bad.out", duration=30)
    assert bad.wait(20) == 1
    refused = (tmp_path / "bad.out").read_text(errors="replace")
    assert f"broker localhost:{broker.port} (TLS, user gw) refused the connection" in refused
    assert "not-the-password" not in refused and SECRET not in refused
