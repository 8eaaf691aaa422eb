"""``headframe verify --capture-live`` against a real mosquitto and a real ``headframe run`` agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.spine.helpers import buffer_state
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker
from tests.verify.streams import KEY, key_file

LOAD = {"HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen", "LOADGEN_RATE": "100", "LOADGEN_SOURCES": "2"}
ROOT = "headframe/test-site/gw-test/"


def headframe(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *map(str, args)], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


def test_live_capture_of_a_running_agent_verifies_and_an_edit_is_caught(tmp_path: Path, broker: MosquittoBroker) -> None:
    key = key_file(tmp_path)
    cfg = write_config(
        tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", extra={"gateway": {"chain_key_file": str(key)}}
    )
    agent = AgentProcess(cfg, env=LOAD)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "buf.db").exists() or buffer_state(tmp_path / "buf.db")[0] < 50:
            assert time.monotonic() < deadline, agent.output()
            time.sleep(0.1)
        cap = tmp_path / "cap.jsonl"
        res = headframe(
            "verify",
            "--capture-live",
            "--broker",
            f"127.0.0.1:{broker.port}",
            "--topic",
            ROOT + "#",
            "--seconds",
            "4",
            "-o",
            cap,
            "--key-file",
            key,
            "--json",
            "--allow-edges",
        )
    finally:
        assert agent.terminate() == 0, agent.output()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "captured" in res.stderr and str(cap) in res.stderr
    report = json.loads(res.stdout)
    (gw,) = report["gateways"]
    assert gw["verdict"] in ("VERIFIED", "VERIFIED EXCEPT EDGES") and gw["key_mode"] == "hmac" and gw["records"] > 100
    assert all(e["last"] - e["first"] < 2000 for e in gw["edges"]), gw["edges"]
    assert any(s["status"] == "online" for s in gw["status"])  # the retained status, outside the chain
    assert KEY.decode() not in res.stdout + res.stderr

    lines = cap.read_bytes().splitlines()
    number, line = next(
        (i, ln)
        for i, ln in enumerate(lines, 1)
        if b"/telemetry/" in ln and i > 10 and orjson.loads(ln)["topic"] != ROOT + "status"
    )
    env = orjson.loads(line)
    body = orjson.loads(env["payload"])
    body["payload"]["n"] += 1000
    env["payload"] = orjson.dumps(body).decode()
    lines[number - 1] = orjson.dumps(env)
    cap.write_bytes(b"\n".join(lines) + b"\n")
    res = headframe("verify", cap, "--key-file", key)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"seq {body['seq']} (" in res.stdout and f"[cap.jsonl line {number}]" in res.stdout
    assert "does not match its chain hash" in res.stdout and "Gateway test-site/gw-test: PROBLEMS FOUND" in res.stdout


def test_live_capture_refuses_a_password_over_plain_tcp(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    res = headframe(
        "verify",
        "--capture-live",
        "--broker",
        "192.0.2.10:1883",
        "--topic",
        "headframe/#",
        "--seconds",
        "1",
        "--username",
        "ops",
        "--password-file",
        pw,
        "-o",
        tmp_path / "c.jsonl",
    )
    assert res.returncode == 2 and "refusing to send a password in clear text" in res.stderr
    assert "s3cret" not in res.stdout + res.stderr and not (tmp_path / "c.jsonl").exists()


def test_live_capture_with_password_on_loopback(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "b", users={"ops": "s3cret"}).start()
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    res = headframe(
        "verify",
        "--capture-live",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--topic",
        "headframe/#",
        "--seconds",
        "1",
        "--username",
        "ops",
        "--password-file",
        pw,
        "-o",
        tmp_path / "c.jsonl",
    )
    assert res.returncode == 2 and "refused the connection" in res.stderr and "wrong" not in res.stderr
    assert not (tmp_path / "c.jsonl").exists()  # nothing captured, no empty file left
    pw.write_text("s3cret\n")
    res = headframe(
        "verify",
        "--capture-live",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--topic",
        "headframe/#",
        "--seconds",
        "1",
        "--username",
        "ops",
        "--password-file",
        pw,
        "-o",
        tmp_path / "c.jsonl",
    )
    assert res.returncode == 2 and "no records to verify" in res.stderr  # connected; nothing was published


def test_live_capture_never_overwrites_a_capture(tmp_path: Path, broker: MosquittoBroker) -> None:
    old = tmp_path / "c.jsonl"
    old.write_bytes(b"earlier evidence\n")
    res = headframe(
        "verify", "--capture-live", "--broker", f"127.0.0.1:{broker.port}", "--topic", "headframe/#", "--seconds", "1", "-o", old
    )
    assert res.returncode == 2 and "already exists" in res.stderr and old.read_bytes() == b"earlier evidence\n"
