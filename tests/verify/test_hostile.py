"""Attacks from the hostile review of ``headframe verify``: each must be caught, none may crash it."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from agent.verify import verify_inputs
from agent.verify.reader import InputSet, read_jsonl
from agent.verify.report import render_text, to_json
from agent.verify.window import EDGE_SEQS
from buffer import BufferStore, Kind, Record
from tests.verify.streams import KEY, Stream, forge, key_file, verify, verify_json, write_jsonl


def _codes(doc: dict, gw: int = 0) -> list[tuple[str, int | None]]:
    return [(p["code"], p["seq"]) for p in doc["gateways"][gw]["problems"]]


def _rechain(docs: list[dict], key: bytes | None, edit: dict[int, dict] | None = None) -> list[dict]:
    """What a forger does: edit payloads and recompute every link and hash with the key he has."""
    out, prev = [], docs[0]["prev"]
    for d in docs:
        y = {k: v for k, v in d.items() if k != "chain"}
        y["prev"] = prev
        if edit and d["seq"] in edit:
            y["payload"] = edit[d["seq"]]
        y = forge(y, key)
        prev = y["chain"]
        out.append(y)
    return out


# 1. capture edges ---------------------------------------------------------------------------------


def test_received_times_in_a_file_buy_no_leniency(tmp_path: Path, capsys) -> None:
    """Deleting seqs 40-60 and rewriting 'received' so they look like a capture edge is still caught."""
    s = Stream(tmp_path)
    s.telemetry(100)
    docs = s.docs()
    kept = [d for d in docs if not 40 <= d["seq"] <= 60]
    forged_at = [0.5 if d["seq"] < 40 else 10.0 + d["seq"] for d in kept]
    cap = write_jsonl(tmp_path / "cap.jsonl", kept, envelope="string", received=forged_at)
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and _codes(doc) == [("missing", 40)] and not doc["gateways"][0]["edges"]
    assert "add --export from the gateway" in doc["gateways"][0]["problems"][0]["text"]
    scattered = [d for d in docs if d["seq"] not in {10, 11, 30, 50, 70, 90}]
    cap = write_jsonl(
        tmp_path / "b.jsonl", scattered, envelope="string", received=[0.0 if d["seq"] < 50 else 59.0 for d in scattered]
    )
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and [s for c, s in _codes(doc)] == [10, 30, 50, 70, 90]


def _live(tmp_path: Path, docs: list[dict], at: list[float], **kw: bool):
    cap = write_jsonl(tmp_path / f"live{len(list(tmp_path.iterdir()))}.jsonl", docs, envelope="string", received=at)
    inputs = InputSet()
    read_jsonl(cap, "live capture", inputs, live=True)
    return verify_inputs(inputs, [KEY], **kw)


def test_edges_of_a_live_capture_are_not_proven(tmp_path: Path) -> None:
    s = Stream(tmp_path)
    s.telemetry(30)
    docs = s.docs()
    at = [0.1 * i for i in range(5)] + [1.0 + i for i in range(25)]  # a burst, then one a second
    edge = [d for d in docs if d["seq"] != 3]  # seq 3 left before the capture began
    report = _live(tmp_path, edge, at[:29])
    (gw,) = report.gateways
    assert gw.verdict == "VERIFIED EXCEPT EDGES" and report.exit_code == 1 and not gw.problems
    assert [(e["first"], e["last"], e["edge"]) for e in gw.edges] == [(3, 3, "start")]
    assert "seq 3 not proven (capture edges)" in render_text(report)
    assert _live(tmp_path, edge, at[:29], allow_edges=True).exit_code == 0
    assert to_json(report)["gateways"][0]["edges"][0]["first"] == 3
    tail = [d for d in docs if d["seq"] != 29]
    assert [(e["first"], e["edge"]) for e in _live(tmp_path, tail, at[:29]).gateways[0].edges] == [(29, "end")]
    inside = [d for d in docs if d["seq"] != 15]  # removed well inside the window
    report = _live(tmp_path, inside, at[:29], allow_edges=True)
    assert report.exit_code == 1 and [(p.code, p.seq) for p in report.gateways[0].problems] == [("missing", 15)]


def test_a_live_edge_covers_at_most_one_lease(tmp_path: Path) -> None:
    s = Stream(tmp_path)
    s.telemetry(EDGE_SEQS + 60)
    docs = s.docs()
    gone = set(range(EDGE_SEQS + 10, EDGE_SEQS + 15))  # all earlier seqs arrived in the first burst
    kept = [d for d in docs if d["seq"] not in gone]
    at = [0.0 if d["seq"] < EDGE_SEQS + 10 else 5.0 + d["seq"] - EDGE_SEQS for d in kept]
    (gw,) = _live(tmp_path, kept, at, allow_edges=True).gateways
    assert [(p.code, p.seq) for p in gw.problems] == [("missing", EDGE_SEQS + 10)] and not gw.edges
    near = set(range(EDGE_SEQS - 10, EDGE_SEQS - 5))  # the same shape within one lease of the start
    kept = [d for d in docs if d["seq"] not in near]
    at = [0.0 if d["seq"] < EDGE_SEQS - 10 else 5.0 + d["seq"] - EDGE_SEQS for d in kept]
    (gw,) = _live(tmp_path, kept, at).gateways
    assert not gw.problems and [(e["first"], e["last"]) for e in gw.edges] == [(EDGE_SEQS - 10, EDGE_SEQS - 6)]


def test_lease_size_matches_the_uplink() -> None:
    from agent.uplink.drain import LEASE_MAX

    assert EDGE_SEQS == LEASE_MAX


# 2. keys bound to a gateway and a seq range -------------------------------------------------------


def _rotated(tmp_path: Path) -> tuple[list[dict], Path, Path]:
    s = Stream(tmp_path, key=b"old-leaked-key")
    s.telemetry(4)
    s.store.chain_key = KEY  # restart with a new key file: seq 5 on is chained with it
    s.telemetry(4)
    return s.docs(), key_file(tmp_path, b"old-leaked-key", "old.key"), key_file(tmp_path)


def test_rotated_keys_apply_only_to_their_seqs(tmp_path: Path, capsys) -> None:
    docs, old, new = _rotated(tmp_path)
    cap = write_jsonl(tmp_path / "cap.jsonl", docs)
    bound = ("--key-file", f"gw-01={old}", "--key-file", f"mine-a/gw-01@5={new}")
    rc, doc = verify_json(capsys, cap, *bound)
    assert rc == 0 and doc["verdict"] == "VERIFIED"
    assert [
        (k["file"], k["from_seq"], k["to_seq"], k["first_verified"], k["last_verified"]) for k in doc["gateways"][0]["keys"]
    ] == [("old.key", 1, 4, 1, 4), ("chain.key", 5, None, 5, 8)]
    rc, out, _ = verify(capsys, cap, *bound)
    assert "Key chain.key (applies from seq 5 on): verified 4 record(s), seqs 5–8" in out
    # the leaked old key re-forges seq 6 on (edited payload, chain recomputed): caught
    forged = docs[:5] + _rechain(docs[5:], b"old-leaked-key", {6: {"p_kw": 0.0, "e_total": 0.0}})
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "f.jsonl", forged), *bound)
    assert rc == 1 and _codes(doc) == [("altered", 6), ("altered", 7), ("altered", 8)]
    assert "(chain.key)" in doc["gateways"][0]["problems"][0]["text"]


def test_keys_must_be_bound_when_there_are_several_gateways(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(6)
    other = BufferStore(tmp_path / "gw2.db", gateway="gw-02", site="mine-a", chain_key=b"gw-02-key")
    other.append([Record("meter-main", Kind.TELEMETRY, {"p_kw": 1.0}, ts=1795600000.0 + i) for i in range(3)])
    gw2 = sorted((orjson.loads(r.doc) for r in other.lease(100)), key=lambda d: d["seq"])
    k1, k2 = key_file(tmp_path), key_file(tmp_path, b"gw-02-key", "gw2.key")
    # gw-01's stream re-forged with gw-02's key: a key tried on every gateway would accept it
    gw1 = s.docs()
    forged = _rechain(gw1, b"gw-02-key", {3: {"p_kw": 0.0, "e_total": 0.0}})
    cap = write_jsonl(tmp_path / "cap.jsonl", forged + gw2)
    rc, _, err = verify(capsys, cap, "--key-file", k1, "--key-file", k2)
    assert rc == 2 and "not bound to a gateway" in err and "--key-file GATEWAY=FILE" in err
    rc, doc = verify_json(capsys, cap, "--key-file", f"gw-01={k1}", "--key-file", f"gw-02={k2}")
    assert rc == 1 and [g["verdict"] for g in doc["gateways"]] == ["PROBLEMS FOUND", "VERIFIED"]
    assert _codes(doc)[0][0] == "key"  # no gw-01 record matches gw-01's key
    genuine = write_jsonl(tmp_path / "ok.jsonl", gw1 + gw2)
    assert verify_json(capsys, genuine, "--key-file", f"gw-01={k1}", "--key-file", f"gw-02={k2}")[0] == 0


def test_bad_key_bindings_are_unusable(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(3)
    cap = write_jsonl(tmp_path / "cap.jsonl", s.docs())
    k = key_file(tmp_path)
    rc, _, err = verify(capsys, cap, "--key-file", f"gw-01@x={k}")
    assert rc == 2 and "FROM_SEQ must be a positive whole number" in err
    rc, _, err = verify(capsys, cap, "--key-file", f"gw-01={k}", "--key-file", f"gw-01={k}")
    assert rc == 2 and "two keys for mine-a/gw-01 from seq 1" in err
    rc, doc = verify_json(capsys, cap, "--key-file", f"gw-09={k}")  # a typo leaves gw-01 unkeyed
    assert rc == 1 and doc["gateways"][0]["verdict"].startswith("LINKS ONLY")


# 3. no key: links only ----------------------------------------------------------------------------


def test_without_a_key_nothing_is_authenticated(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(10)
    legit = s.docs()
    forged = _rechain(legit, None, {5: {"p_kw": 0.0, "e_total": 0.0}})  # plain SHA-256, edited
    for docs in (legit, forged):
        rc, doc = verify_json(capsys, write_jsonl(tmp_path / "c.jsonl", docs))
        assert rc == 1 and doc["verdict"] == "LINKS ONLY — NOT AUTHENTICATED" and not _codes(doc)
        assert verify_json(capsys, tmp_path / "c.jsonl", "--no-key-ok")[0] == 0
    rc, out, _ = verify(capsys, tmp_path / "c.jsonl")
    assert "content of the records cannot be authenticated without the gateway's key" in out
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "d.jsonl", legit[:4] + legit[5:]), "--no-key-ok")
    assert rc == 1 and _codes(doc) == [("missing", 5)]  # links and seqs are still checked
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "e.jsonl", forged), "--key-file", key_file(tmp_path))
    assert rc == 1 and "unkeyed record (a keyed gateway never writes these)" in doc["gateways"][0]["problems"][0]["text"]


# 4. hostile evidence records ----------------------------------------------------------------------


def test_malformed_evidence_records_are_reported_not_crashed_on(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(3)
    bad = [
        s.event({"event": "agent_started", "previous_run": "x"}),
        s.event({"event": "gap", "cause": "crash", "from": [1]}),
        s.event(
            {
                "event": "records_dropped",
                "reason": "byte_cap",
                "count": 1,
                "ranges": [{"first": "2", "last": 2, "prev": "0", "chain": "0"}],
            }
        ),
        s.event({"event": "config_applied", "changed": "uplink.host"}),
    ]
    s.telemetry(1)
    cap = write_jsonl(tmp_path / "cap.jsonl", s.docs())
    rc, out, err = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and "Traceback" not in out + err
    for seq in bad:
        assert f"malformed evidence record seq {seq}" in out
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert _codes(doc) == [("malformed", q) for q in bad] and not doc["gateways"][0]["gaps"]


def test_evidence_whose_hash_fails_is_not_listed(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(3)
    s.event({"event": "agent_started", "previous_run": {"ended": "clean"}})
    s.gap(3, 4, cause="clean_stop")
    s.telemetry(1)
    docs = s.docs()
    docs[4]["payload"]["cause"] = "link_down"  # the gap record, edited
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    (gw,) = doc["gateways"]
    assert rc == 1 and _codes(doc) == [("altered", 5)] and gw["gaps"] == []


# 5. power_loss ranges hide deletions among the records received before the cut ---------------------


def test_power_loss_range_says_how_many_of_its_seqs_were_received(tmp_path: Path, capsys) -> None:
    db = tmp_path / "buf.db"
    st = BufferStore(db, gateway="gw-01", site="mine-a", chain_key=KEY, boot_id="boot-A")

    def rec(i: int) -> Record:
        return Record("meter-main", Kind.TELEMETRY, {"p_kw": 40.0 + i}, ts=1795600000.0 + 10 * i, clock_synced=True)

    st.append([rec(i) for i in range(5)], power_loss=True)
    st.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (tmp_path / "snap").mkdir()
    shutil.copy(db, tmp_path / "snap" / "buf.db")  # the disk as the power cut leaves it
    st.append([rec(i) for i in range(5, 8)])  # seqs 6-8: sent, then lost from the page cache
    sent = sorted((orjson.loads(r.doc) for r in st.lease(100)), key=lambda d: d["seq"])
    st.db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "snap" / "buf.db", db)
    st = BufferStore(db, gateway="gw-01", site="mine-a", chain_key=KEY, boot_id="boot-B")
    st.append([rec(20)])
    after = sorted((orjson.loads(r.doc) for r in st.lease(100)), key=lambda d: d["seq"])
    full = sent + [d for d in after if d["seq"] > 8]
    for docs, inside in ((full, 3), ([d for d in full if d["seq"] != 7], 2)):
        rc, doc = verify_json(capsys, write_jsonl(tmp_path / "c.jsonl", docs), "--key-file", key_file(tmp_path))
        (drop,) = doc["gateways"][0]["drops"]
        assert rc == 0 and drop["reason"] == "power_loss" and drop["received_inside"] == inside
    rc, out, _ = verify(capsys, tmp_path / "c.jsonl", "--key-file", key_file(tmp_path))
    assert "2 seq(s) inside the power_loss range" in out and "a deletion among those received records cannot be seen" in out


def test_hostile_status_message_does_not_crash_the_report(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(2)
    status = {
        "status": ["online"],
        "gateway": "gw-01",
        "site": "mine-a",
        "since": {"x": 1},
        "previous_session": {"lost_at": 5, "down_s": "forever", "reason": ["?"]},
    }
    rc, out, err = verify(capsys, write_jsonl(tmp_path / "cap.jsonl", [*s.docs(), status]), "--key-file", key_file(tmp_path))
    assert rc == 0 and "down unknown duration" in out and "Traceback" not in err
