"""``headframe verify`` accepts what a genuine gateway produces: drops, duplicates, gaps, status."""

from __future__ import annotations

from pathlib import Path

from buffer import Kind
from tests.verify.streams import Stream, key_file, verify, verify_json, write_jsonl

STATUS = {
    "status": "online",
    "gateway": "gw-01",
    "site": "mine-a",
    "since": "2026-11-25T04:12:00.000Z",
    "session": {"started": "2026-11-25T04:12:00.000Z"},
    "previous_session": {"lost_at": "2026-11-25T01:00:00.000Z", "down_s": 11520.0, "reason": "unplugged"},
}
WILL = {
    "status": "offline",
    "gateway": "gw-01",
    "site": "mine-a",
    "reason": "connection lost",
    "session_started": "2026-11-25T00:00:00.000Z",
    "last_seen_by_gateway": "2026-11-25T01:00:00.000Z",
}


def test_legitimate_drops_are_explained_and_accepted(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(20)
    s.drop([3, 4, 5, 9], reason="byte_cap")  # two ranges in one record
    s.telemetry(3)
    s.drop([22, 23], reason="ttl")  # seq 21 is the first records_dropped record
    s.telemetry(2)
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", s.docs()), "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert rc == 0 and gw["verdict"] == "VERIFIED", gw["problems"]
    assert [(d["reason"], d["count"], [(r["first"], r["last"]) for r in d["ranges"]]) for d in gw["drops"]] == [
        ("byte_cap", 4, [(3, 5), (9, 9)]),
        ("ttl", 2, [(22, 23)]),
    ]
    assert gw["first_seq"] == 1 and gw["last_seq"] == 27


def test_drop_bridge_is_checked(tmp_path: Path, capsys) -> None:
    """The records around a drop must join the range's own prev/chain, else it is not the same chain."""
    s = Stream(tmp_path)
    s.telemetry(10)
    s.drop([4, 5])
    docs = s.docs()
    genuine = write_jsonl(tmp_path / "ok.jsonl", docs)
    assert verify_json(capsys, genuine, "--key-file", key_file(tmp_path))[0] == 0
    other = Stream(tmp_path, name="other.db")  # a second, genuinely keyed chain: seq 6 from elsewhere
    other.telemetry(7, source="meter-2")
    foreign = {d["seq"]: d for d in other.docs()}
    after = [foreign[6] if d["seq"] == 6 else d for d in docs]  # the record after the range
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", after), "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert rc == 1 and [(p["code"], p["seq"]) for p in gw["problems"]] == [("link", 6), ("link", 7)]
    before = [foreign[3] if d["seq"] == 3 else d for d in docs]  # the record before the range
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap2.jsonl", before), "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert rc == 1 and [(p["code"], p["seq"]) for p in gw["problems"]] == [("link", 3), ("bridge", 4)]


def test_duplicates_are_allowed(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(8)
    docs = s.docs()
    cap = write_jsonl(tmp_path / "cap.jsonl", docs + docs[2:5] + list(reversed(docs[:3])))
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 0, out
    assert "8 distinct; 6 identical repeated deliveries (allowed)" in out


def test_gap_records_and_status_are_listed(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(3)
    s.event(
        {
            "event": "agent_started",
            "version": "0.2.0",
            "boot": {"boot_id": "b2", "boot_count": 18},
            "previous_run": {"ended": "unknown", "last_seq": 3},
        }
    )
    s.gap(3, 4, cause="unplugged")
    s.event(
        {
            "alarm": "gateway_dark_while_site_ran",
            "state": "raised",
            "duration_s": 11520.0,
            "delta_kwh": 840.0,
            "text": "gateway dark for 3 h 12 min while the site drew 840 kWh",
        },
        kind=Kind.ALARM,
    )
    s.telemetry(2)
    cap = write_jsonl(tmp_path / "cap.jsonl", [WILL, *s.docs(), STATUS], envelope="object")
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 0, out
    assert "3 h 12 min (seq 3 to 4): switched off or unplugged" in out
    assert "meter-main e_total: 1200.5 -> 2040.5 kWh, the site drew 840.0 kWh" in out
    assert "meter-2 e_total: unknown (meter not answering)" in out
    assert "camera cam-1: camera_lost" in out
    assert "previous run ended: unknown" in out and "gateway dark for 3 h 12 min while the site drew 840 kWh" in out
    assert "offline (connection lost), since 2026-11-25 00:00:00 UTC, last seen by gateway 2026-11-25 01:00:00" in out
    assert "Status messages (retained status / last will; not part of the chain) (2)" in out
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert gw["records"] == 8 and [g["cause"] for g in gw["gaps"]] == ["unplugged"]
    assert gw["gaps"][0]["energy"][0]["delta_kwh"] == 840.0 and len(gw["status"]) == 2


def test_envelope_with_payload_as_string_and_export_together(tmp_path: Path, capsys) -> None:
    """What the consumer received plus what the gateway still holds = one continuous stream."""
    s = Stream(tmp_path)
    s.telemetry(6)
    sent = s.docs()
    s.store.ack([d["seq"] for d in sent])
    s.telemetry(4)
    unsent = s.docs()
    cap = write_jsonl(tmp_path / "cap.jsonl", sent, envelope="string")
    exp = write_jsonl(tmp_path / "export.jsonl", unsent)
    rc, doc = verify_json(capsys, cap, "--export", exp, "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert rc == 0 and gw["first_seq"] == 1 and gw["last_seq"] == 10
    assert [f["label"] for f in doc["inputs"]] == ["capture", "export"]
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))  # without the export: still fine
    assert rc == 0 and doc["gateways"][0]["last_seq"] == 6


def test_rotated_keys(tmp_path: Path, capsys) -> None:
    """After a key rotation the chain continues; each key is bound to the seqs it chained."""
    s = Stream(tmp_path)
    s.telemetry(4)
    s.store.chain_key = b"new-key-after-rotation"
    s.telemetry(4)
    cap = write_jsonl(tmp_path / "cap.jsonl", s.docs())
    new = tmp_path / "new.key"
    new.write_bytes(b"new-key-after-rotation")
    assert verify_json(capsys, cap, "--key-file", f"gw-01={key_file(tmp_path)}", "--key-file", f"gw-01@5={new}")[0] == 0
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and [p["seq"] for p in doc["gateways"][0]["problems"]] == [5, 6, 7, 8]
    rc, doc = verify_json(capsys, cap, "--key-file", f"gw-01@5={new}")  # the old key not given
    assert rc == 1 and [(p["code"], p["seq"]) for p in doc["gateways"][0]["problems"]] == [("key", 1)]
    assert "no key given applies to seqs 1–4" in doc["gateways"][0]["problems"][0]["text"]


def test_window_edges_of_a_file_capture_are_problems(tmp_path: Path, capsys) -> None:
    """A file's received times are whatever its holder wrote: no edge leniency (see test_hostile for live)."""
    s = Stream(tmp_path)
    s.telemetry(30)
    docs = s.docs()
    at = [0.1 * i for i in range(5)] + [1.0 + i for i in range(25)]  # a burst, then one a second
    for gone in (3, 15, 29):
        kept = [d for d in docs if d["seq"] != gone]
        rc, doc = verify_json(
            capsys,
            write_jsonl(tmp_path / f"{gone}.jsonl", kept, envelope="string", received=at[:29]),
            "--key-file",
            key_file(tmp_path),
        )
        (gw,) = doc["gateways"]
        assert rc == 1 and [(p["code"], p["seq"]) for p in gw["problems"]] == [("missing", gone)] and not gw["edges"]


def test_status_bodies_without_topic_or_ids(tmp_path: Path, capsys) -> None:
    """A bare status body (no topic, no gateway id) belongs to the one gateway in the file."""
    s = Stream(tmp_path)
    s.telemetry(3)
    docs = s.docs()
    bare = {"status": "offline", "reason": "shutdown", "since": "2026-11-25T10:00:00.000Z"}
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", [*docs, bare]), "--key-file", key_file(tmp_path))
    assert rc == 0 and [g["gateway"] for g in doc["gateways"]] == ["gw-01"]
    assert doc["gateways"][0]["status"][0]["reason"] == "shutdown"
    other = {"status": "online", "gateway": "gw-02", "site": "mine-a", "since": "2026-11-25T10:00:00.000Z"}
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "two.jsonl", [*docs, other]), "--key-file", key_file(tmp_path))
    assert rc == 0 and [g["verdict"] for g in doc["gateways"]] == ["VERIFIED", "NO RECORDS"]


def test_silence_without_a_gap_record_is_listed(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(3)
    s.dark(7200)  # two hours without a record and without a gap record
    s.telemetry(2)
    s.dark(3600)
    s.event({"event": "agent_started", "previous_run": {"ended": "clean"}})
    s.gap(5, 6, cause="clean_stop", duration_s=3610.0)  # this hour is explained
    s.telemetry(1)
    rc, out, _ = verify(capsys, write_jsonl(tmp_path / "cap.jsonl", s.docs()), "--key-file", key_file(tmp_path))
    assert rc == 0, out  # a silence is a fact to report, not tampering
    assert "Silences the gateway did not explain (no gap record) (1):" in out
    assert "2 h 0 min: nothing between seq 3 and seq 4" in out
    assert "1 h 0 min" in out and "the gateway was stopped cleanly" in out
