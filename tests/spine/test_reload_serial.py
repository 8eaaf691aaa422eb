"""SIGHUP reloads with the real agent process: a burst of reloads while the file is being
rewritten never overlaps (each ``config_applied`` is followed by its ``config_reloaded`` before
anything else), ends on the last valid file, and a reload whose new parts cannot be built
(an unreadable password) is rejected and leaves the running config in effect."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from agent.continuity.config_audit import describe
from config import load_settings
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, free_port
from tests.support.wait import wait_until

RELOAD_EVENTS = ("config_applied", "config_reloaded", "config_reload_rejected")


def agent_events(db: Path) -> list[dict[str, Any]]:
    """The agent's reload-related events in commit order (no broker: they stay in the buffer)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT body FROM records WHERE source = 'agent' ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        con.close()
    payloads = [orjson.loads(r[0])["payload"] for r in rows]
    return [p for p in payloads if p.get("event") in RELOAD_EVENTS and p.get("trigger") != "start"]


def health_hashes(db: Path) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT body FROM records WHERE prio = 3 ORDER BY seq").fetchall()
    finally:
        con.close()
    return [orjson.loads(r[0])["payload"].get("config_hash") for r in rows]


def test_sighup_burst_is_serialised_and_a_failed_reload_keeps_the_running_config(tmp_path: Path, agents) -> None:
    db = tmp_path / "buf.db"
    port = free_port()  # no broker: every record stays in the buffer, in commit order
    cfg = tmp_path / "c.yaml"
    write_config(cfg, port, buffer_path=db, health_interval="0.3s")
    agent = AgentProcess(cfg, log=tmp_path / "agent.log")
    agents.append(agent)
    state = db.with_name(db.name + ".continuity.json")
    wait_until("the audit salt saved", lambda: state.exists() and orjson.loads(state.read_bytes()).get("audit_salt"))
    salt = bytes.fromhex(orjson.loads(state.read_bytes())["audit_salt"])

    def version(i: int) -> str:
        """Valid version i: the uplink changes each time, so each reload restarts the uplink
        (an await in the middle of the reload: where overlapping reloads would interleave)."""
        path = write_config(tmp_path / f"v{i}.yaml", port, buffer_path=db, health_interval="0.3s", keepalive=10 + i)
        return path.read_text()

    valid = {i: version(i) for i in (1, 2, 3, 4)}
    hashes = {i: describe(load_settings(tmp_path / f"v{i}.yaml"), cfg, salt).hash for i in valid}
    bad = json.dumps({**json.loads(valid[2]), "healthh": {"interval": "1s"}})
    burst = [valid[1], bad, valid[2], valid[3], bad, valid[4]]
    wait_until("first health record", lambda: db.exists() and health_hashes(db))
    for text in burst:  # the file rewritten in place (not atomically) between the signals, no waiting
        cfg.write_text(text)
        os.kill(agent.proc.pid, signal.SIGHUP)

    def settled() -> bool:
        ev = agent_events(db)
        return bool(ev) and ev[-1]["event"] == "config_reloaded" and ev[-1].get("hash") == hashes[4]

    wait_until("the burst settled on the last valid file", settled, timeout=30)
    events = agent_events(db)
    names = [e["event"] for e in events]
    applied = [e for e in events if e["event"] == "config_applied"]
    # serialised: each applied config is put in effect before the next reload starts
    for i, name in enumerate(names):
        if name == "config_applied":
            assert names[i + 1] == "config_reloaded", f"reloads overlapped: {names}"
            assert events[i + 1]["hash"] == events[i]["hash"]
        if name == "config_reloaded":
            assert i > 0 and names[i - 1] == "config_applied", f"reloads overlapped: {names}"
    # each signal gives at most one reload (a burst coalesces); each reads the file as it is then,
    # so the applied versions only move forward, and the last one is the last valid file
    assert 1 <= names.count("config_applied") + names.count("config_reload_rejected") <= len(burst)
    order = {h: i for i, h in hashes.items()}
    seen = [order.get(a["hash"]) for a in applied]
    assert None not in seen and seen == sorted(seen), f"applied out of order: {seen}"
    assert seen[-1] == 4
    for rej in (e for e in events if e["event"] == "config_reload_rejected"):
        assert rej["problems"] and rej["running_hash"].startswith("hmac-sha256:")
    wait_until("health carries the last valid config", lambda: health_hashes(db)[-1] == hashes[4])

    # a reload that passes validation but whose new uplink cannot be built: rejected, nothing changes
    secret = tmp_path / "pw"
    secret.write_bytes(b"\xffS3cret\xfe")
    text = write_config(
        tmp_path / "v5.yaml", port, buffer_path=db, health_interval="0.3s", username="gw", password_file=str(secret)
    )
    cfg.write_text(text.read_text())
    before = len(agent_events(db))
    agent.signal(signal.SIGHUP)
    rejected = wait_until("the reload rejected", lambda: agent_events(db)[before:])
    assert [e["event"] for e in rejected] == ["config_reload_rejected"]
    assert rejected[0]["running_hash"] == hashes[4]
    assert any("not UTF-8" in p and str(secret) in p for p in rejected[0]["problems"])
    n = len(health_hashes(db))
    wait_until("two more health records", lambda: len(health_hashes(db)) >= n + 2)
    assert set(health_hashes(db)[n:]) == {hashes[4]}
    assert agent.proc.poll() is None
    assert orjson.loads(state.read_bytes())["config"]["hash"] == hashes[4]

    # the next good file applies normally
    cfg.write_text(valid[1])
    agent.signal(signal.SIGHUP)
    wait_until("v1 applied again", lambda: agent_events(db)[-1:] and agent_events(db)[-1].get("hash") == hashes[1])
    assert agent.terminate() == 0
    log = agent.output()
    assert "Traceback" not in log and "S3cret" not in log and "reload rejected" in log


def caught(pid: int) -> set[int]:
    """The signals the process has a handler for (``/proc/PID/status`` SigCgt)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return set()
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return {sig for sig in range(1, 65) if mask & (1 << (sig - 1))}


def test_sighup_during_start_up_waits_for_it(tmp_path: Path, broker, agents) -> None:
    """A SIGHUP as early as the process can catch one (while it is still importing) neither kills
    it nor races start-up: the reload runs after start-up, with one uplink and one session at a
    time (two uplinks with one client id would take the session from each other for ever)."""
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=db, health_interval="0.3s")
    collector = Collector(broker, topics=["headframe/+/+/health/agent", "headframe/+/+/event/agent"]).start()
    agent = AgentProcess(cfg, log=tmp_path / "agent.log")
    agents.append(agent)
    write_config(cfg, broker.port, buffer_path=db, health_interval="0.3s", keepalive=7)  # the uplink changes
    wait_until("a SIGHUP handler", lambda: signal.SIGHUP in caught(agent.proc.pid), timeout=30, interval=0.001)
    os.kill(agent.proc.pid, signal.SIGHUP)

    def events(ms: list[Any]) -> list[str]:
        return [m.json()["payload"].get("event") for m in ms if m.topic.endswith("/event/agent")]

    collector.wait_for(lambda ms: "config_reloaded" in events(ms), timeout=30)
    # then ten health records in a row over one session
    n = len([m for m in collector.snapshot() if m.topic.endswith("/health/agent")])
    collector.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/health/agent")]) >= n + 10, timeout=30)
    assert agent.terminate() == 0
    log = agent.output()
    # the early handler caught it (it came while the agent was still importing), not the daemon's own
    assert "a SIGHUP came in during start-up" in log, "the signal must arrive before the daemon's own handlers"
    started, reloaded = log.index("running: gateway"), log.index("reload: new config in effect")
    assert started < reloaded, "the reload ran before start-up finished"
    # one session at a time: the start's, then (if it was up already) the reload's; none ever lost
    assert 1 <= log.count("uplink: connected to") <= 2 and "connection to broker" not in log, log
    collector.stop()
