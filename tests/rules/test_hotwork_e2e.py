"""Hot work end to end: real video, the real ONNX person model, a real agent and a real mosquitto.

``hil.camera_server`` streams vtest.avi (people walking) as HTTP MJPEG into ``headframe run``;
the hot-work zone covers the picture. Without a permit the people are an alarm; a ``permit``
command published on the command topic allows the work and makes the camera record evidence
clips for the permit plus the tail; hostile and repeated commands get their replies and the
agent runs on; an engineer issues and revokes a permit with ``headframe permit`` over the
control socket; the agent is restarted in the middle of the permit and the rule's snapshot
keeps it (the recording goes on). Every clip's SHA-256 is recomputed from its file and
compared with the chained ``evidence_clip`` record, and ``headframe verify --evidence-dir``
checks them as an inspector would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from hil.camera_server import CameraServer
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import Collector, MosquittoBroker
from tests.support.wait import wait_until
from tests.vision.conftest import MEDIA

ROOT = "headframe/test-site/gw-test/"
ZONE_ALARM = ROOT + "alarm/weld-1"
REPLIES = ROOT + "event/platform"
TAIL_S, PERMIT_S = 6.0, 16.0


def config(tmp_path: Path, broker: MosquittoBroker, url: str, sock: Path) -> Path:
    doc = {
        "control": {"enabled": True, "socket": str(sock)},
        "cameras": [
            {
                "id": "cam-hw",
                "url": url,
                "fps": 4,
                "telemetry_interval": 5,
                "tamper": {"enabled": False},
                "detector": {"model": "ssdlite_person_300", "threads": 1},
            }
        ],
        "rules": {
            "hotwork": {
                "timezone": "UTC",
                "min_permit": "5s",  # the test permit lasts PERMIT_S
                "segment": "5s",
                "zones": [
                    {
                        "name": "weld-1",
                        "camera": "cam-hw",
                        "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                        "tail": f"{TAIL_S}s",
                        "clear_after": "2s",
                        "debounce_frames": 2,
                    }
                ],
            }
        },
    }
    return write_config(tmp_path / "hw.yaml", broker.port, buffer_path=tmp_path / "buffer.db", extra=doc)


def docs(collector: Collector, topic: str, key: str | None = None, value: str | None = None) -> list[dict[str, Any]]:
    out = [m.json() for m in collector.snapshot() if m.topic == topic]
    return [d for d in out if key is None or d["payload"].get(key) == value]


def publish(collector: Collector, doc: dict[str, Any]) -> None:
    collector.client.publish(ROOT + "command", json.dumps(doc).encode(), qos=1).wait_for_publish(5)


def reply(collector: Collector, cid: str, n: int = 1) -> dict[str, Any]:
    found = wait_until(
        f"reply to {cid}",
        lambda: len(r := [d for d in docs(collector, REPLIES, "event", "command_reply") if d["payload"]["id"] == cid]) >= n and r,
    )
    return dict(found[n - 1]["payload"])


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def sock() -> Iterator[Path]:
    """A short directory for the control socket (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hf-hw-"))
    yield path / "control.sock"
    shutil.rmtree(path, ignore_errors=True)


def permit_cli(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``headframe permit`` as an engineer on site runs it, over the agent's control socket."""
    cmd = [sys.executable, "-m", "agent.cli", "permit", *args, "--socket", str(sock)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)


def on_site_permits(sock: Path) -> None:
    """The local path: a planned permit issued, repeated, refused, revoked (no effect on the clips:
    it never starts)."""
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(timespec="seconds")
    issue = ["issue", "weld-1", "--number", "HW-8", "--issuer", "safety.li", "--from", later, "--duration", "2h", "--id", "cli-1"]
    ok = permit_cli(sock, *issue)
    assert ok.returncode == 0 and "permit HW-8 (weld-1): accepted" in ok.stdout, ok.stdout + ok.stderr
    dup = permit_cli(sock, *issue)
    assert dup.returncode == 1 and "command cli-1 was already ok" in dup.stderr, dup.stderr
    long = permit_cli(sock, "issue", "weld-1", "--number", "HW-9", "--issuer", "x", "--duration", "30h")
    assert long.returncode == 1 and "longer than rules.hotwork.max_permit" in long.stderr, long.stderr
    gone = permit_cli(sock, "revoke", "weld-1", "--number", "HW-1")
    assert gone.returncode == 1 and "args.number: no permit 'HW-1' in zone weld-1; live permits: ['HW-8']" in gone.stderr
    rev = permit_cli(sock, "revoke", "weld-1", "--number", "HW-8")
    assert rev.returncode == 0 and "permit HW-8 (weld-1): revoked" in rev.stdout, rev.stdout + rev.stderr


def test_person_permit_clips_restart_and_hostile_commands(tmp_path: Path, broker: MosquittoBroker, sock: Path) -> None:
    collector = Collector(broker).start()
    server = CameraServer({"hw": MEDIA / "vtest.avi"}).start()
    cfg = config(tmp_path, broker, server.url("hw"), sock)
    agent = AgentProcess(cfg)
    clips_dir = tmp_path / "evidence" / "cam-hw"
    try:
        # 1. people in the zone, no permit: the alarm, and no recording
        raised = wait_until("the person-outside-permit alarm", lambda: docs(collector, ZONE_ALARM, "state", "raised"), 40)
        assert raised[0]["payload"]["id"] == "hotwork:person_outside_permit:weld-1"
        assert raised[0]["payload"]["severity"] == "immediate"
        assert not clips_dir.exists()
        # 2. hostile permits are refused naming the field; the agent runs on
        bad = {"number": "HW-1", "issuer": "li", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}
        publish(collector, {"id": "bad-1", "command": "permit", "target": "weld-1", "args": bad})
        publish(collector, {"id": "bad-2", "command": "permit", "target": "weld-9", "args": {"number": "x", "issuer": "y"}})
        assert reply(collector, "bad-1")["reason"].startswith("args.end:")
        assert reply(collector, "bad-2")["reason"].startswith("target: 'weld-9' is not a hot-work zone")
        # 3. the permit: accepted, started, recording ordered, the alarm clears
        args = {"number": "HW-7", "issuer": "safety.li", "duration": f"{PERMIT_S}s"}
        publish(collector, {"id": "pm-1", "command": "permit", "target": "weld-1", "by": "dispatch.wang", "args": args})
        ok = reply(collector, "pm-1")
        assert (ok["result"], ok["state"]) == ("ok", "accepted"), ok
        permit_end = epoch(ok["permit"]["until"])
        wait_until("permit_started", lambda: docs(collector, ROOT + "event/weld-1", "event", "permit_started"))
        (order,) = wait_until(
            "the recording order", lambda: docs(collector, ROOT + "event/cam-hw", "event", "evidence_recording")
        )
        until = order["payload"]["until_ts"]
        assert abs(until - (permit_end + TAIL_S)) < 0.01  # the reply shows ms
        wait_until("the alarm cleared by the permit", lambda: docs(collector, ZONE_ALARM, "state", "cleared"), 10)
        publish(collector, {"id": "pm-1", "command": "permit", "target": "weld-1", "args": args})
        assert reply(collector, "pm-1", n=2)["result"] == "duplicate"
        # 4. restart in the middle of the permit: the snapshot keeps it, the order is repeated
        wait_until("a first clip", lambda: docs(collector, ROOT + "event/cam-hw", "event", "evidence_clip"), 15)
        assert agent.terminate() == 0, agent.output()[-3000:]
        agent = AgentProcess(cfg)
        again = wait_until(
            "the order repeated after the restart",
            lambda: docs(collector, ROOT + "event/cam-hw", "reason", "restart"),
            30,
        )
        assert again[0]["payload"]["until_ts"] == until
        # 5. the permit ends (people there again: the alarm), clips go on for the tail, then stop
        ended = wait_until("permit_ended", lambda: docs(collector, ROOT + "event/weld-1", "event", "permit_ended"), 30)
        assert ended[0]["payload"]["reason"] == "expired"
        wait_until("the alarm after the permit", lambda: len(docs(collector, ZONE_ALARM, "state", "raised")) >= 2, 15)
        wait_until(
            "the tail's last clip",
            lambda: (
                time.time() > until + 2
                and any(
                    epoch(d["payload"]["end"]) > until - 2
                    for d in docs(collector, ROOT + "event/cam-hw", "event", "evidence_clip")
                )
            ),
            30,
        )
        quiet_from = time.monotonic()
        on_site_permits(sock)
        # one more segment length: a recorder that does not stop would announce a clip
        time.sleep(max(0.0, 6 - (time.monotonic() - quiet_from)))
        assert agent.proc.poll() is None
    finally:
        rc = agent.terminate()
        server.stop()
        collector.stop()
    assert rc == 0
    clips = [d["payload"] for d in docs(collector, ROOT + "event/cam-hw", "event", "evidence_clip")]
    assert len(clips) >= 4, clips
    for clip in clips:
        path = tmp_path / clip["file"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == clip["sha256"] and len(data) == clip["size"], clip
        assert epoch(order["payload"]["at"]) - 1 <= epoch(clip["start"]) and epoch(clip["end"]) < until, clip
        cap = cv2.VideoCapture(str(path))
        frames = 0
        while cap.read()[0]:
            frames += 1
        assert frames == clip["frames"] > 0, (clip, frames)
    assert max(epoch(c["end"]) for c in clips) > permit_end + TAIL_S / 2  # recorded through the tail
    assert sorted(p.name for p in clips_dir.iterdir()) == sorted(Path(c["file"]).name for c in clips)
    local = [d["payload"] for d in docs(collector, ROOT + "event/local", "event", "command")]
    assert [c["command"] for c in local] == ["permit"] * 3 + ["permit_revoke"] * 2
    assert all(c["origin"] == "cli" and c["by"] for c in local)  # by: the OS user, from the kernel
    # an inspector's check: the captured stream plus the clip files
    capture = tmp_path / "capture.jsonl"
    sent = [m for m in collector.snapshot() if not m.topic.endswith(("/status", "/command"))]  # what the gateway published
    capture.write_text("".join(m.payload.decode() + "\n" for m in sent))
    verify = [sys.executable, "-m", "agent.cli", "verify", str(capture), "--no-key-ok", "--evidence-dir", str(tmp_path)]
    run = subprocess.run(verify, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(clips)} evidence clip(s) checked" in run.stdout, run.stdout
    first = tmp_path / clips[0]["file"]
    first.write_bytes(first.read_bytes()[:-10] + b"0123456789")  # a clip replaced after the fact
    run = subprocess.run(verify, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and clips[0]["file"] in run.stdout, run.stdout
