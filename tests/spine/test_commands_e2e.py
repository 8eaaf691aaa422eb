"""Inbound commands end to end: a real mosquitto, the agent as a real process, a platform client
publishing on the command topic, and ``headframe alarms`` over the real control socket.

The alarm to act on is real too: a corrupt buffer file makes the agent raise ``buffer_corrupt``
(id ``agent:buffer_corrupt``); the alarm manager acts on the commands inside the commit that
records them (``rules/engine.py``).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker

ROOT = "headframe/test-site/gw-test/"
COMMAND_TOPIC = ROOT + "command"
ALARM_ID = "agent:buffer_corrupt"
#: r0's engine runs the rules in the commit; without it nothing replies (SPEC-RULES.md).


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for the control socket (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hf-ctl-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_agent(tmp_path: Path, broker: MosquittoBroker, sock: Path) -> AgentProcess:
    db = tmp_path / "buf.db"
    db.write_bytes(b"this is not an SQLite database" * 100)  # -> a real buffer_corrupt alarm
    cfg = write_config(
        tmp_path / "c.yaml", broker.port, buffer_path=db, extra={"control": {"enabled": True, "socket": str(sock)}}
    )
    return AgentProcess(cfg)


def docs(collector: Collector, topic: str, event: str | None = None) -> list[dict[str, Any]]:
    out = [m.json() for m in collector.snapshot() if m.topic == topic]
    return [d for d in out if event is None or d["payload"].get("event") == event]


def wait_docs(
    collector: Collector, topic: str, event: str, pred=lambda d: True, n: int = 1, timeout: float = 20.0
) -> list[dict[str, Any]]:
    collector.wait_for(lambda _: len([d for d in docs(collector, topic, event) if pred(d)]) >= n, timeout)
    return [d for d in docs(collector, topic, event) if pred(d)]


def ready(collector: Collector) -> None:
    """The agent is online, its alarm is out, and its command subscription has landed."""
    collector.wait_for(lambda ms: any(m.topic == ROOT + "status" and m.json()["status"] == "online" for m in ms))
    collector.wait_for(
        lambda _: any(d["payload"].get("alarm") == "buffer_corrupt" for d in docs(collector, ROOT + "alarm/agent"))
    )
    time.sleep(0.5)  # SUBSCRIBE follows the online status on the same connection


def publish(collector: Collector, payload: bytes | dict[str, Any]) -> None:
    body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    collector.client.publish(COMMAND_TOPIC, body, qos=1).wait_for_publish(5)


def test_platform_ack_is_recorded_then_acted_on(tmp_path: Path, broker: MosquittoBroker, sock_dir: Path) -> None:
    collector = Collector(broker).start()
    agent = start_agent(tmp_path, broker, sock_dir / "control.sock")
    try:
        ready(collector)
        publish(collector, {"id": "p-1", "command": "ack", "target": ALARM_ID, "by": "dispatch.wang"})
        (cmd,) = wait_docs(collector, ROOT + "event/platform", "command")
        assert cmd["source"] == "platform" and cmd["kind"] == "event"
        assert cmd["payload"] | {"received": ""} == {
            "event": "command",
            "id": "p-1",
            "command": "ack",
            "target": ALARM_ID,
            "by": "dispatch.wang",
            "received": "",
            "origin": "mqtt",
        }
        (reply,) = wait_docs(collector, ROOT + "event/platform", "command_reply")
        assert (reply["payload"]["id"], reply["payload"]["result"]) == ("p-1", "ok")
        acked = wait_docs(collector, ROOT + "event/agent", "alarm_state", lambda d: d["payload"]["state"] == "acknowledged")
        assert acked[0]["payload"]["by"] == "dispatch.wang" and acked[0]["seq"] > cmd["seq"]
        publish(collector, {"id": "p-1", "command": "ack", "target": ALARM_ID, "by": "dispatch.wang"})
        dup = wait_docs(collector, ROOT + "event/platform", "command_reply", lambda d: d["payload"]["result"] == "duplicate")
        assert dup[0]["payload"]["id"] == "p-1"
        time.sleep(0.5)
        assert (
            len(wait_docs(collector, ROOT + "event/agent", "alarm_state", lambda d: d["payload"]["state"] == "acknowledged")) == 1
        )
    finally:
        assert agent.terminate() == 0, agent.output()
        collector.stop()


def test_hostile_commands_are_rejected_recorded_and_the_agent_lives(
    tmp_path: Path, broker: MosquittoBroker, sock_dir: Path
) -> None:
    collector = Collector(broker).start()
    agent = start_agent(tmp_path, broker, sock_dir / "control.sock")
    try:
        ready(collector)
        publish(collector, b"\x1b[2J not json\n")
        publish(collector, b"{" + b" " * 5000 + b"}")
        publish(collector, {"id": "h-1", "command": "ack", "target": ALARM_ID, "sudo": True})
        publish(collector, {"id": "h-2", "command": "reboot", "target": ALARM_ID})
        rejected = wait_docs(collector, ROOT + "event/platform", "command_rejected", n=4)
        reasons = [d["payload"]["reason"] for d in rejected]
        assert reasons[0] == "payload is not JSON" and "\\x1b" in rejected[0]["payload"]["excerpt"]
        assert "exceeds 4096" in reasons[1] and rejected[1]["payload"]["size"] == 5002
        assert "unknown key(s) sudo" in reasons[2] and "command must be one of" in reasons[3]
        assert docs(collector, ROOT + "event/platform", "command") == []  # none of them reached a rule
        # a flood: 300 at once; the bucket lets ~20 through, the rest are counted in one record
        started = time.monotonic()
        for i in range(300):
            info = collector.client.publish(
                COMMAND_TOPIC, json.dumps({"id": f"f-{i}", "command": "ack", "target": "nope"}).encode(), qos=1
            )
        info.wait_for_publish(10)
        elapsed = time.monotonic() - started  # the bucket refills 10/s while the flood arrives
        (flood,) = wait_docs(collector, ROOT + "event/platform", "command_flood")  # ~5 s after the first drop
        accepted = docs(collector, ROOT + "event/platform", "command")
        assert 10 <= len(accepted) <= 20 + 10 * (elapsed + 0.5), (len(accepted), elapsed)
        # nothing dropped silently: the record counts every drop and names the first 50 ids
        assert flood["payload"]["dropped"] == 300 - len(accepted)
        named = flood["payload"]["dropped_ids"]
        assert len(named) == 50 and set(named) <= {f"f-{n}" for n in range(300)}
        assert not set(named) & {d["payload"]["id"] for d in accepted}
        assert len(docs(collector, ROOT + "event/platform", "command_flood")) == 1  # one a minute
        assert agent.proc.poll() is None
        n_health = len(docs(collector, ROOT + "health/agent"))
        collector.wait_for(lambda _: len(docs(collector, ROOT + "health/agent")) > n_health)
        health = docs(collector, ROOT + "health/agent")[-1]["payload"]
        assert health["uplink"]["commands"]["rejected"] == 4
        assert health["uplink"]["commands"]["flood_dropped"] == 300 - len(accepted)
    finally:
        assert agent.terminate() == 0, agent.output()
        collector.stop()
    assert "not json" not in agent.output()  # payloads are never logged


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "agent.cli", "alarms", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def ask_as_nobody(sock: Path) -> str:
    """The CLI's client, run in a child that dropped to user nobody (not in the socket's group)."""
    from agent.alarms_cli import ControlError, ask

    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            ask(sock, {"op": "list"})
            msg = "connected"
        except ControlError as exc:
            msg = str(exc)
        except BaseException as exc:
            msg = repr(exc)
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as fh:
        return fh.read().decode()


def test_cli_over_the_control_socket(tmp_path: Path, broker: MosquittoBroker, sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    collector = Collector(broker).start()
    agent = start_agent(tmp_path, broker, sock)
    try:
        ready(collector)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        listed = cli("list", "--socket", str(sock))
        assert listed.returncode == 0, listed.stderr
        assert ALARM_ID in listed.stdout
        acked = cli("ack", ALARM_ID, "--socket", str(sock), "--id", "cli-t1")
        (cmd,) = wait_docs(collector, ROOT + "event/local", "command")
        me = pwd.getpwuid(os.getuid()).pw_name
        assert cmd["payload"] | {"received": ""} == {
            "event": "command",
            "id": "cli-t1",
            "command": "ack",
            "target": ALARM_ID,
            "by": me,
            "received": "",
            "origin": "cli",
        }
        assert acked.returncode == 0 and "acknowledged" in acked.stdout, acked.stderr
        wrong = cli("close", "no:such:alarm", "--socket", str(sock))
        assert wrong.returncode == 1 and "unknown alarm id 'no:such:alarm'" in wrong.stderr
        assert "acknowledged" in cli("list", "--socket", str(sock)).stdout
        missing = cli("list", "--socket", str(sock_dir / "nope.sock"))
        assert missing.returncode == 1 and "is the agent running?" in missing.stderr
        assert "nope.sock" in missing.stderr
        if os.geteuid() == 0:
            assert "add yourself to group headframe" in ask_as_nobody(sock)
        assert agent.proc.poll() is None
    finally:
        assert agent.terminate() == 0, agent.output()
        collector.stop()
    assert not sock.exists()  # removed at a clean stop
    offline = cli("list", "-c", str(tmp_path / "c.yaml"))  # agent stopped: the saved state, read-only
    assert offline.returncode == 0 and "buffer database instead" in offline.stderr, offline.stderr
    assert ALARM_ID in offline.stdout


def test_alarm_life_and_command_ids_survive_a_restart(tmp_path: Path, broker: MosquittoBroker, sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    collector = Collector(broker).start()
    agent = start_agent(tmp_path, broker, sock)
    try:
        ready(collector)
        publish(collector, {"id": "r-1", "command": "ack", "target": ALARM_ID, "by": "dispatch.wang"})
        wait_docs(collector, ROOT + "event/platform", "command_reply", lambda d: d["payload"]["result"] == "ok")
    finally:
        assert agent.terminate() == 0, agent.output()
    agent = AgentProcess(tmp_path / "c.yaml", log=tmp_path / "second.log")  # the database is healthy now
    try:
        collector.wait_for(
            lambda _: sum(d["payload"].get("event") == "agent_started" for d in docs(collector, ROOT + "event/agent")) >= 2
        )
        collector.wait_for(lambda ms: sum(m.topic == ROOT + "status" and m.json()["status"] == "online" for m in ms) >= 2)
        time.sleep(0.5)  # SUBSCRIBE follows the online status
        listed = cli("list", "--socket", str(sock))
        assert ALARM_ID in listed.stdout and "acknowledged" in listed.stdout, listed.stdout + listed.stderr
        publish(collector, {"id": "r-1", "command": "ack", "target": ALARM_ID, "by": "dispatch.wang"})
        wait_docs(collector, ROOT + "event/platform", "command_reply", lambda d: d["payload"]["result"] == "duplicate")
    finally:
        assert agent.terminate() == 0, agent.output()
        collector.stop()
