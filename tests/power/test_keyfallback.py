"""An unusable chain key must not make the gateway dark (issue 10): real agent processes.

The agent runs on an emergency key, raises ``chain_key_unusable``, records ``chain_key_changed``
so a verifier knows which key applies from which seq, and a start that dies early never leaves
the previous run's clean stop standing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from buffer.chainkey import fingerprint
from tests.power.helpers import ALARM, HEALTH, agent_config, events, payloads, run_state, start_agent, wait_for
from tests.support.agentproc import REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def key_alarms(tmp_path: Path, state: str) -> list[dict[str, Any]]:
    return [p for p in payloads(tmp_path, ALARM) if p.get("alarm") == "chain_key_unusable" and p["state"] == state]


def key_health(tmp_path: Path) -> dict[str, Any] | None:
    health = [h for h in payloads(tmp_path, HEALTH) if "chain_key" in h.get("buffer", {})]
    return health[-1]["buffer"]["chain_key"] if health else None


def verify_export(tmp_path: Path, cfg: Path, *keys: Path | str) -> dict[str, Any]:
    """``keys``: key files, or ``GATEWAY[@FROM_SEQ]=FILE`` bindings as ``headframe verify`` takes them."""
    out = tmp_path / "export.jsonl"
    assert cli("buffer", "export", "-c", str(cfg), "-o", str(out)).returncode == 0
    args = ["verify", "--export", str(out), "--json"]
    for key in keys:
        args += ["--key-file", str(key)]
    res = cli(*args)
    assert res.stdout, res.stderr
    report = json.loads(res.stdout)
    report["exit"] = res.returncode
    return report


def seq_of_event(tmp_path: Path, name: str, reason: str) -> int:
    con = sqlite3.connect(f"file:{tmp_path / 'buf.db'}?mode=ro", uri=True)
    try:
        docs = [json.loads(r[0]) for r in con.execute("SELECT body FROM records ORDER BY seq")]
    finally:
        con.close()
    return next(d["seq"] for d in docs if d["payload"].get("event") == name and d["payload"].get("reason") == reason)


def keyed_config(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "gw.key"
    key.write_text("0123456789abcdef" * 4 + "\n")
    key.chmod(0o600)
    cfg = agent_config(tmp_path)
    doc = json.loads(cfg.read_text())
    doc["gateway"]["chain_key_file"] = str(key)
    cfg.write_text(json.dumps(doc))
    return cfg, key


def test_missing_key_agent_runs_on_emergency_key_then_restored_key_clears(tmp_path: Path) -> None:
    cfg, key = keyed_config(tmp_path)
    good = key.read_bytes().strip()
    key.unlink()
    check = cli("check", str(cfg))
    assert check.returncode == 0, check.stderr
    assert "warning: gateway.chain_key_file" in check.stderr and "does not exist; create it" in check.stderr

    agent, started = start_agent(tmp_path, cfg, "1")
    raised = wait_for(lambda: key_alarms(tmp_path, "raised"), 10, "chain_key_unusable raised")[0]
    emergency = Path(raised["emergency_key"])
    assert raised["key_file"] == str(key) and raised["problem"] == "missing" and raised["severity"] == "immediate"
    assert emergency.parent == tmp_path and emergency.name.startswith("chain.key.emergency-")
    assert emergency.stat().st_mode & 0o777 == 0o600
    assert "next restart" in raised["text"]
    ekey = emergency.read_bytes().strip()
    changed = events(tmp_path, "chain_key_changed")
    assert changed == [
        {
            "event": "chain_key_changed",
            "from_fingerprint": None,
            "to_fingerprint": fingerprint(ekey),
            "reason": "emergency",
            "key_file": str(emergency),
        }
    ]
    health = wait_for(lambda: key_health(tmp_path), 10, "health with the chain key state")
    assert health["state"] == "emergency" and health["configured"] == str(key) and health["problem"] == "missing"
    assert agent.terminate() == 0
    log = (tmp_path / "agent-1.log").read_text()
    assert "gw.key does not exist; create it" in log and "restart the agent" in log
    assert ekey.decode() not in log and ekey.decode() not in json.dumps(payloads(tmp_path, HEALTH))

    # every record so far verifies with the emergency key, and not without it
    assert verify_export(tmp_path, cfg, emergency)["exit"] == 0
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not the key\n")
    assert verify_export(tmp_path, cfg, wrong)["exit"] == 1

    key.write_bytes(good + b"\n")
    key.chmod(0o600)
    agent, started = start_agent(tmp_path, cfg, "2")
    assert started["previous_run"]["ended"] == "clean"
    cleared = wait_for(lambda: key_alarms(tmp_path, "cleared"), 10, "chain_key_unusable cleared")
    assert cleared[0]["key_file"] == str(key)
    restored = events(tmp_path, "chain_key_changed")[-1]
    assert restored == {
        "event": "chain_key_changed",
        "from_fingerprint": fingerprint(ekey),
        "to_fingerprint": fingerprint(good),
        "reason": "configured key restored",
        "key_file": str(key),
    }
    assert wait_for(lambda: (key_health(tmp_path) or {}).get("state") == "ok", 10, "health: key ok")
    assert agent.terminate() == 0
    assert len(key_alarms(tmp_path, "raised")) == 1
    # a verifier needs both keys, each bound to its seqs: the emergency one up to the change
    # (the chain_key_changed record is the first record under the restored key), the configured one after
    switch = seq_of_event(tmp_path, "chain_key_changed", "configured key restored")
    assert verify_export(tmp_path, cfg, f"gw-test={emergency}", f"gw-test@{switch}={key}")["exit"] == 0
    assert verify_export(tmp_path, cfg, key)["exit"] == 1

    # the same key again: no change recorded, no alarm
    agent, _ = start_agent(tmp_path, cfg, "3")
    assert agent.terminate() == 0
    assert len(events(tmp_path, "chain_key_changed")) == 2 and len(key_alarms(tmp_path, "cleared")) == 1


def test_a_start_that_dies_early_is_not_taken_for_a_clean_stop(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path)
    agent, _ = start_agent(tmp_path, cfg, "1")
    assert agent.terminate() == 0
    assert run_state(tmp_path)["clean"] is True
    # the buffer cannot be opened (a dangling symlink survives the corrupt-file recovery): the start dies
    db = tmp_path / "buf.db"
    db.rename(tmp_path / "kept.db")
    db.symlink_to(tmp_path / "no-such-dir" / "buf.db")
    res = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert res.returncode != 0
    assert run_state(tmp_path)["clean"] is False
    db.unlink()
    (tmp_path / "kept.db").rename(db)

    agent, started = start_agent(tmp_path, cfg, "3")
    assert started["previous_run"]["ended"] == "crash", started["previous_run"]
    gap = wait_for(lambda: events(tmp_path, "gap"), 10, "gap record")[-1]
    assert gap["cause"] == "crash", gap
    assert agent.terminate() == 0
