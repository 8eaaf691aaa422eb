"""The whole evidence story end to end: a real agent through a link outage that overflows the byte
cap, then an unplug (SIGKILL + simulated reboot), captured by a real subscriber and checked by
``headframe verify`` — every gap and drop explained, and one removed record caught.

Real parts: mosquitto, the agent process, the fault proxy of the HIL rig between agent and broker
(the inspector's subscription goes straight to the broker, so it never misses what the broker
accepted). The only hook is the simulated reboot (``HEADFRAME_FAKE_BOOT_ID``): this machine cannot
be power-cycled by a test.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from hil.proxy import FaultProxy
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker, free_port
from tests.support.wait import wait_until as wait_for
from tests.verify.test_live import headframe

ROOT = "headframe/test-site/gw-test/"
LOAD = {"HEADFRAME_EXTRA_PRODUCERS": "tests.support.loadgen", "LOADGEN_RATE": "1500", "LOADGEN_SOURCES": "3"}


def payloads(collector: Collector) -> list[dict[str, Any]]:
    out = []
    for m in list(collector.messages):
        if m.topic.endswith("/status"):
            continue
        out.append(orjson.loads(m.payload)["payload"])
    return out


def counters(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT name, value FROM counters").fetchall())
    finally:
        con.close()


def test_outage_overflow_and_unplug_verify_and_a_removed_record_is_caught(tmp_path: Path, broker: MosquittoBroker) -> None:
    proxy = FaultProxy(free_port(), broker.port).start()
    inspector = Collector(broker, topics=[ROOT + "#"], client_id="inspector").start()
    db = tmp_path / "buf.db"
    cfg = write_config(tmp_path / "c.yaml", proxy.listen_port, buffer_path=db, extra={"buffer": {"max_bytes": "1MiB"}})
    agent = AgentProcess(cfg, env=LOAD, log=tmp_path / "run1.log")
    try:
        wait_for("first records", lambda: len(inspector.messages) > 300)
        proxy.set_mode("drop")  # the link goes down; 1500 rec/s overflow the 1 MiB cap within seconds
        wait_for("byte cap eviction", lambda: any(k.startswith("dropped_cap_") for k in counters(db)))
        proxy.set_mode("pass")
        wait_for(
            "link_down gap", lambda: any(p.get("event") == "gap" and p.get("cause") == "link_down" for p in payloads(inspector))
        )
        agent.kill()  # unplugged: no stop record ...
        agent = AgentProcess(
            cfg, env={**LOAD, "HEADFRAME_FAKE_BOOT_ID": "e2e-after-unplug"}, log=tmp_path / "run2.log"
        )  # ... and a new boot
        wait_for(
            "unplugged gap", lambda: any(p.get("event") == "gap" and p.get("cause") == "unplugged" for p in payloads(inspector))
        )
        time.sleep(1.0)
    finally:
        rc = agent.terminate()
        proxy.stop()
    assert rc == 0, agent.output()
    time.sleep(0.5)
    inspector.stop()

    got = payloads(inspector)
    drops = {p["reason"] for p in got if p.get("event") == "records_dropped"}
    assert {"byte_cap", "power_loss"} <= drops, drops
    cap = tmp_path / "capture.jsonl"
    cap.write_text("".join(json.dumps({"topic": m.topic, "payload": m.payload.decode()}) + "\n" for m in inspector.messages))
    export = tmp_path / "export.jsonl"
    res = headframe("buffer", "export", "-c", cfg, "-o", export)
    assert res.returncode == 0, res.stderr
    key = tmp_path / "chain.key"  # the default key the agent created beside its buffer

    res = headframe("verify", cap, "--export", export, "--key-file", key, "--json")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    (gw,) = json.loads(res.stdout)["gateways"]
    assert gw["verdict"] == "VERIFIED" and gw["key_mode"] == "hmac"

    # someone removes one delivered telemetry record from the capture: named, by seq
    lines = cap.read_text().splitlines()
    victim = next(i for i, line in enumerate(lines[len(lines) // 2 :], len(lines) // 2) if "/telemetry/" in line)
    seq = orjson.loads(json.loads(lines[victim])["payload"])["seq"]
    cut = tmp_path / "cut.jsonl"
    kept = [
        ln
        for ln in lines
        if "/status" in json.loads(ln)["topic"]  # every copy: delivery is at least once
        or orjson.loads(json.loads(ln)["payload"])["seq"] != seq
    ]
    cut.write_text("\n".join(kept) + "\n")
    res = headframe("verify", cut, "--export", export, "--key-file", key)
    assert res.returncode == 1, res.stdout[-3000:]
    assert "PROBLEMS FOUND" in res.stdout and str(seq) in res.stdout
