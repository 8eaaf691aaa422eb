"""``headframe probe s7`` against snap7's S7 server: values, a short DB, bad syntax, a refused port."""

from __future__ import annotations

import subprocess
import sys

from tests.support.agentproc import REPO
from tests.support.broker import free_port
from tests.support.s7plc import S7Plc


def hf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_probe_reads_values_and_names_what_is_wrong() -> None:
    plc = S7Plc({("DB", 10): 12, ("M", 0): 2}).start()
    try:
        plc.pack("DB", 10, 8, ">f", 3.5)
        plc.write("M", 0, 0, b"\x04")
        target = f"127.0.0.1:{plc.port}"
        res = hf("probe", "s7", target, "--read", "DB10.DBD8:REAL", "--read", "M0.2", "--read", "DB10.DBW20:INT")
        assert res.returncode == 1, res.stderr  # one address past the end of DB10
        assert res.stdout.splitlines() == [
            "DB10.DBD8 REAL = 3.5",
            "DB10.DBW20: DB10.DBW20 is outside DB10 (out of range, 0x05) — the PLC's block is shorter than configured",
            "M0.2 BOOL = True",
        ]
        res = hf("probe", "s7", target, "--read", "DB10.DBW6:REAL")
        assert res.returncode == 2 and "DB10.DBW6:REAL: an address that fits type REAL" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        plc.stop()
    port = free_port()
    res = hf("probe", "s7", f"127.0.0.1:{port}", "--read", "MW0:INT", "--timeout", "0.5")
    assert res.returncode == 2 and f"error: PLC 127.0.0.1:{port} refused the connection" in res.stderr
