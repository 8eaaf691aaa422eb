"""A Modbus-only agent carries no library of a feature it does not use.

Every module imported stays in the agent's RSS for its whole life: prometheus_client (metrics
off), numpy (through sqlite_utils, used only by ``headframe buffer``), aiohttp (page off), the
vision stack and multiprocessing (no camera), the fleet view. The real ``headframe run`` is
started in a fresh interpreter with one Modbus TCP device, stopped once it says it is running,
and its ``sys.modules`` is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.broker import free_port

REPO = Path(__file__).resolve().parents[2]

FORBIDDEN = (
    "prometheus_client",
    "numpy",
    "sqlite_utils",
    "aiohttp",
    "cv2",
    "onnxruntime",
    "multiprocessing",
    "vision",
    "agent.web",
    "agent.fleet",
    "agent.metrics",
)

PROBE = textwrap.dedent(
    """
    import json, logging, os, signal, sys

    class StopWhenRunning(logging.Handler):
        def emit(self, record):
            if "running: gateway" in record.getMessage():
                os.kill(os.getpid(), signal.SIGTERM)

    logging.getLogger("headframe.agent").addHandler(StopWhenRunning())
    from agent import cli

    rc = cli.main(["run", "-c", sys.argv[1]])
    print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
    """
)


def test_a_modbus_only_agent_imports_no_vision_web_metrics_or_numpy(tmp_path: Path) -> None:
    cfg = {
        "gateway": {"site": "lean", "id": "gw"},
        "buffer": {"path": str(tmp_path / "buf.db")},
        "uplink": {"host": "127.0.0.1", "port": free_port()},  # nothing listens: the agent runs on regardless
        "logging": {"level": "INFO", "journald": "off"},
        "control": {"enabled": False},
        "devices": [
            {
                "id": "meter1",
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": free_port(),
                "groups": [{"name": "default", "interval": "1s"}],
                "points": [{"name": "p0", "address": 0, "type": "uint16"}],
            }
        ],
    }
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(cfg))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, out.stderr[-3000:]
    modules = set(result["modules"])
    assert "drivers.runtime" in modules and "pymodbus" in modules, "the Modbus producer did not even start"
    carried = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert not carried, f"a Modbus-only agent imported {carried}"
