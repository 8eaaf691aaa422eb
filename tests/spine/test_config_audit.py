"""Configuration audit with the real agent process: ``config_applied`` at start, on SIGHUP and
after a change made while the agent was stopped; changed keys only, never a secret."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from tests.spine.helpers import buffered_payloads
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import free_port
from tests.support.wait import wait_until as wait_for

EVENT, HEALTH = 1, 3
SECRET = "s3cret-Hunter2-do-not-log"
SECRET2 = "an0ther-s3cret-value"


def applied(db: Path) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    return [p for p in buffered_payloads(db, EVENT) if p.get("event") == "config_applied"]


def everything_stored(tmp_path: Path, db: Path) -> bytes:
    """Every record body and the continuity state, as bytes (to look for secrets)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        bodies = b"\n".join(bytes(r[0]) for r in con.execute("SELECT body FROM records"))
    finally:
        con.close()
    return bodies + db.with_name(db.name + ".continuity.json").read_bytes()


def test_config_applied_at_start_reload_and_after_a_change_while_stopped(tmp_path: Path, agents) -> None:
    db = tmp_path / "buf.db"
    (tmp_path / "pw1").write_text(SECRET)
    (tmp_path / "pw2").write_text(SECRET2)
    port = free_port()  # no broker: records stay in the buffer
    cfg = tmp_path / "c.yaml"

    def write(**over: Any) -> None:
        uplink = {"username": "gw", "password_file": str(tmp_path / over.pop("pw", "pw1")), **over.pop("uplink", {})}
        write_config(cfg, port, buffer_path=db, extra=over, **uplink)

    write()
    agent = AgentProcess(cfg, log=tmp_path / "run1.log")
    agents.append(agent)
    first = wait_for("config_applied at start", lambda: applied(db))[0]
    assert first["trigger"] == "start" and first["path"] == str(cfg)
    # keyed with the gateway's audit salt: a published hash of a file holding a camera password
    # cannot be reversed by guessing (the plain SHA-256 of the file is not what is published)
    assert first["hash"].startswith("hmac-sha256:") and first["file_hash"].startswith("hmac-sha256:")
    assert first["file_hash"].split(":")[1] != hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert first["mtime"].endswith("Z") and first["changed"] is None and first["previous_hash"] is None
    started = next(p for p in buffered_payloads(db, EVENT) if p.get("event") == "agent_started")
    assert started["config"] == {"hash": first["hash"], "path": str(cfg)}
    health = wait_for("health", lambda: buffered_payloads(db, HEALTH))
    assert health[0]["config_hash"] == first["hash"]

    # reload: two settings changed, the secret file swapped, a restart-only key changed too
    time.sleep(0.05)
    write(pw="pw2", uplink={"keepalive": 45}, health={"interval": "2s"}, buffer={"max_bytes": "64MiB"})
    agent.signal(signal.SIGHUP)
    reload = wait_for("config_applied at reload", lambda: applied(db)[1:])[0]
    assert reload["trigger"] == "reload"
    assert reload["changed"] == ["health.interval", "uplink.keepalive", "uplink.password_file"]
    assert reload["pending_restart"] == ["buffer.max_bytes"]
    assert reload["hash"] != first["hash"] and reload["file_hash"] != first["file_hash"]
    wait_for(
        "health with the new hash", lambda: any(h.get("config_hash") == reload["hash"] for h in buffered_payloads(db, HEALTH))
    )
    assert agent.terminate() == 0

    # changed while stopped: the next start says what, against the last applied config
    doc = json.loads(cfg.read_text())
    doc["logging"]["level"] = "WARNING"
    cfg.write_text(json.dumps(doc))
    agent = AgentProcess(cfg, log=tmp_path / "run2.log")
    agents.append(agent)
    third = wait_for("config_applied at the second start", lambda: applied(db)[2:])[0]
    assert third["trigger"] == "start" and third["changed_while_stopped"] is True
    assert third["previous_hash"] == reload["hash"]
    # buffer.max_bytes was pending a restart: it is in effect now, so it is listed too
    assert third["changed"] == ["buffer.max_bytes", "logging.level"]
    assert agent.terminate() == 0

    # unchanged across a restart: recorded, and it says nothing changed
    agent = AgentProcess(cfg, log=tmp_path / "run3.log")
    agents.append(agent)
    fourth = wait_for("config_applied at the third start", lambda: applied(db)[3:])[0]
    assert fourth["changed_while_stopped"] is False and fourth["changed"] == []
    assert agent.terminate() == 0

    stored = everything_stored(tmp_path, db)
    assert SECRET.encode() not in stored and SECRET2.encode() not in stored
    logs = "".join((tmp_path / f"run{i}.log").read_text() for i in (1, 2, 3))
    assert SECRET not in logs and SECRET2 not in logs and "Traceback" not in logs
    assert orjson.loads(db.with_name(db.name + ".continuity.json").read_bytes())["config"]["hash"] == fourth["hash"]
