"""Run ``headframe run`` as a real subprocess, the way systemd would, and write its config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def write_config(
    path: Path,
    broker_port: int,
    *,
    buffer_path: Path,
    extra: dict[str, Any] | None = None,
    health_interval: str = "1s",
    **uplink: Any,
) -> Path:
    """Write a spine config (JSON is valid YAML) for the agent under test."""
    doc: dict[str, Any] = {
        "gateway": {"site": "test-site", "id": "gw-test"},
        "buffer": {"path": str(buffer_path), "flush_interval": "20ms"},
        "uplink": {
            "host": "127.0.0.1",
            "port": broker_port,
            "reconnect_min": "0.1s",
            "reconnect_max": "0.5s",
            "keepalive": 5,
            "connect_timeout": "3s",
            **uplink,
        },
        "health": {"interval": health_interval},
        "logging": {"level": "INFO", "journald": "off"},
        # off unless a test asks for it: parallel agents must not fight over /run/headframe
        "control": {"enabled": False},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    path.write_text(json.dumps(doc, indent=2))
    return path


class AgentProcess:
    """A ``headframe run`` subprocess with its stderr captured to a file."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.config = config
        self.log = log or config.with_suffix(".log")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        self._logfh = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "-c", str(config)],
            cwd=REPO,
            env=full_env,
            stdout=self._logfh,
            stderr=subprocess.STDOUT,
        )

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._logfh.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._logfh.close()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
