"""``headframe permit`` on site: the real CLI, the agent's real control socket, the rule's replies.

The same path as ``headframe alarms``: the command is recorded (source ``local``, ``by`` = the
OS user from the kernel) and the hot-work rule's reply is what the CLI prints.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.wait import wait_until


@pytest.fixture
def sock() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hf-hw-"))
    yield path / "control.sock"
    shutil.rmtree(path, ignore_errors=True)


def permit(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "agent.cli", "permit", *args, "--socket", str(sock)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)


def local_commands(db: Path) -> list[dict]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT body FROM records WHERE source = 'local' ORDER BY seq").fetchall()
    finally:
        con.close()
    return [orjson.loads(r[0])["payload"] for r in rows]


def test_permit_issue_revoke_duplicate_and_refusal_over_the_control_socket(tmp_path: Path, sock: Path) -> None:
    doc = {
        "control": {"enabled": True, "socket": str(sock)},
        "cameras": [{"id": "cam-hw", "url": str(tmp_path / "no-such.avi"), "tamper": {"enabled": False}}],
        "rules": {"hotwork": {"zones": [{"name": "weld-1", "camera": "cam-hw", "polygon": [[0, 0], [1, 0], [1, 1]]}]}},
    }
    db = tmp_path / "buffer.db"
    agent = AgentProcess(write_config(tmp_path / "c.yaml", free_port(), buffer_path=db, extra=doc))
    try:
        wait_until("the control socket", sock.exists, 20)
        ok = permit(sock, "issue", "weld-1", "--number", "HW-3", "--issuer", "safety.li", "--duration", "2h", "--id", "cli-1")
        assert ok.returncode == 0 and "permit HW-3 (weld-1): accepted" in ok.stdout, ok.stdout + ok.stderr
        dup = permit(sock, "issue", "weld-1", "--number", "HW-3", "--issuer", "safety.li", "--duration", "2h", "--id", "cli-1")
        assert dup.returncode == 1 and "command cli-1 was already ok" in dup.stderr, dup.stderr
        bad = permit(sock, "issue", "weld-1", "--number", "HW-4", "--issuer", "x", "--duration", "30h")
        assert bad.returncode == 1 and "longer than rules.hotwork.max_permit" in bad.stderr, bad.stderr
        gone = permit(sock, "revoke", "weld-1", "--number", "HW-9")
        assert gone.returncode == 1 and "args.number: no permit 'HW-9' in zone weld-1; live permits: ['HW-3']" in gone.stderr
        rev = permit(sock, "revoke", "weld-1", "--number", "HW-3")
        assert rev.returncode == 0 and "permit HW-3 (weld-1): ended" in rev.stdout, rev.stdout + rev.stderr
        assert agent.proc.poll() is None
    finally:
        assert agent.terminate() == 0, agent.output()[-2000:]
    commands = [p for p in local_commands(db) if p["event"] == "command"]
    assert [c["command"] for c in commands] == ["permit"] * 3 + ["permit_revoke"] * 2
    assert all(c["origin"] == "cli" and c["by"] for c in commands)  # the OS user, from the kernel
    replies = [(p["id"], p["result"]) for p in local_commands(db) if p["event"] == "command_reply"]
    assert [r for _, r in replies] == ["ok", "duplicate", "rejected", "rejected", "ok"]
