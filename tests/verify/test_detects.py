"""``headframe verify`` must catch each way a stream can be falsified (issue 10 item 5)."""

from __future__ import annotations

from pathlib import Path

from tests.verify.streams import KEY, Stream, forge, key_file, verify, verify_json, write_jsonl


def _problems(doc: dict, code: str | None = None) -> list[dict]:
    (gw,) = doc["gateways"]
    return [p for p in gw["problems"] if code is None or p["code"] == code]


def _stream(tmp_path: Path, n: int = 12) -> list[dict]:
    s = Stream(tmp_path)
    s.telemetry(n)
    return s.docs()


def test_intact_stream_verifies(tmp_path: Path, capsys) -> None:
    cap = write_jsonl(tmp_path / "cap.jsonl", _stream(tmp_path))
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 0, out
    assert "Gateway mine-a/gw-01: VERIFIED" in out and "seq 1 to 12" in out and "No problems" in out


def test_deleted_record_is_found(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    del docs[4]  # seq 5
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1 and doc["verdict"] == "PROBLEMS FOUND"
    (p,) = _problems(doc)
    assert p["code"] == "missing" and p["seq"] == 5 and "missing: seq 5 (1 record)" in p["text"]


def test_edited_payload_is_found(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    docs[6]["payload"]["p_kw"] = 0.0  # seq 7 "the pump was off"
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1
    (p,) = _problems(doc)
    assert p["code"] == "altered" and p["seq"] == 7 and p["where"] == "cap.jsonl line 7"


def test_swapped_payloads_are_found(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    docs[2]["payload"], docs[3]["payload"] = docs[3]["payload"], docs[2]["payload"]
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1
    assert {p["seq"] for p in _problems(doc, "altered")} == {3, 4}


def test_swapped_seqs_are_found(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    docs[2]["seq"], docs[3]["seq"] = docs[3]["seq"], docs[2]["seq"]
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1
    assert {p["seq"] for p in _problems(doc, "altered")} == {3, 4}


def test_record_injected_without_the_key_is_found(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    fake = dict(docs[-1], seq=13, prev=docs[-1]["chain"], payload={"p_kw": 0.0, "e_total": 1211.5})
    docs.append(forge(fake, None))  # plain SHA-256: what a forger can compute
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1
    (p,) = _problems(doc)
    assert p["code"] == "unkeyed" and p["seq"] == 13 and "someone without the gateway key" in p["text"]


def test_record_injected_with_a_wrong_key_in_place_of_a_real_one(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    forged = forge(dict(docs[5], payload={"p_kw": 0.0, "e_total": 0.0}), b"guessed-key")
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", [*docs, forged]), "--key-file", key_file(tmp_path))
    assert rc == 1
    (p,) = _problems(doc)  # the genuine seq 6 verifies; the second version cannot be genuine
    assert p["code"] == "conflict" and p["seq"] == 6 and "2 different versions" in p["text"]
    # only the forged version arrived: its hash fails
    docs[5] = forged
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap2.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1 and [p["seq"] for p in _problems(doc, "altered")] == [6]


def test_silent_seq_gap_in_the_buffer_is_found(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(10)
    # removed from the buffer by hand, with no records_dropped record
    s.store.db.executemany("DELETE FROM records WHERE seq = ?", [(4,), (5,), (6,)])
    s.store.db.commit()
    cap = write_jsonl(tmp_path / "cap.jsonl", s.docs())
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and "PROBLEMS FOUND" in out
    assert "missing: seqs 4–6 (3 records)" in out and "No records_dropped record explains them" in out


def test_forged_drop_record_explains_nothing(tmp_path: Path, capsys) -> None:
    s = Stream(tmp_path)
    s.telemetry(10)
    rows = {r: s.store.db.execute("SELECT body FROM records WHERE seq = ?", (r,)).fetchone()[0] for r in (4, 5)}
    s.store.db.executemany("DELETE FROM records WHERE seq = ?", [(4,), (5,)])
    s.store.db.commit()
    docs = s.docs()
    import orjson

    first, last = orjson.loads(rows[4]), orjson.loads(rows[5])
    fake = {
        **docs[-1],
        "seq": 11,
        "prev": docs[-1]["chain"],
        "source": "agent",
        "kind": "event",
        "payload": {
            "event": "records_dropped",
            "reason": "byte_cap",
            "count": 2,
            "by_kind": {"telemetry": 2},
            "ranges": [{"first": 4, "last": 5, "prev": first["prev"], "chain": last["chain"]}],
        },
    }
    rc, doc = verify_json(
        capsys, write_jsonl(tmp_path / "cap.jsonl", [*docs, forge(fake, None)]), "--key-file", key_file(tmp_path)
    )
    assert rc == 1
    codes = {(p["code"], p["seq"]) for p in _problems(doc)}
    assert ("missing", 4) in codes and ("unkeyed", 11) in codes
    assert doc["gateways"][0]["drops"] == []  # not listed as evidence


def test_drop_range_that_does_not_join_is_found(tmp_path: Path, capsys) -> None:
    """A genuine drop record cannot be reused to hide a different removal."""
    s = Stream(tmp_path)
    s.telemetry(10)
    s.drop([4, 5])
    docs = [d for d in s.docs() if d["seq"] != 6]  # seq 6 removed by hand next to the explained drop
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1
    assert [(p["code"], p["seq"]) for p in _problems(doc)] == [("missing", 6)]


def test_edited_attachment_is_found(tmp_path: Path, capsys) -> None:
    import base64

    from buffer import Attachment, Kind, Record

    s = Stream(tmp_path)
    s.store.append(
        [
            Record(
                "cam-1",
                Kind.ALARM,
                {"alarm": "seal_breach"},
                ts=1795600000.0,
                attachments=(Attachment("seal.jpg", "image/jpeg", b"\xff\xd8real-jpeg"),),
            )
        ]
    )
    s.telemetry(2)
    docs = s.docs()
    assert verify_json(capsys, write_jsonl(tmp_path / "ok.jsonl", docs), "--key-file", key_file(tmp_path))[0] == 0
    docs[0]["attachments"][0]["data"] = base64.b64encode(b"\xff\xd8other-jpg").decode()
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    assert rc == 1 and [(p["code"], p["seq"]) for p in _problems(doc)] == [("attachment", 1)]


def test_key_is_never_printed(tmp_path: Path, capsys) -> None:
    docs = _stream(tmp_path)
    docs[0]["payload"]["p_kw"] = 1.0
    rc, out, err = verify(capsys, write_jsonl(tmp_path / "cap.jsonl", docs), "--key-file", key_file(tmp_path))
    rc2, out2, err2 = verify(capsys, write_jsonl(tmp_path / "c.jsonl", docs), "--key-file", key_file(tmp_path), "--json")
    assert rc == rc2 == 1
    assert KEY.decode() not in out + err + out2 + err2


def test_lost_database_shows_as_a_chain_restart(tmp_path: Path, capsys) -> None:
    """A replaced buffer database restarts the chain (prev = genesis) above the reserved seq floor."""
    s = Stream(tmp_path)
    s.telemetry(5)
    before = s.docs()
    s.store.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"buf.db{suffix}").unlink(missing_ok=True)
    s = Stream(tmp_path)  # the .seq floor survives: numbering continues far above
    s.telemetry(3)
    after = s.docs()
    assert after[0]["seq"] > 100_000
    rc, doc = verify_json(capsys, write_jsonl(tmp_path / "cap.jsonl", before + after), "--key-file", key_file(tmp_path))
    (p,) = _problems(doc)
    assert rc == 1 and p["code"] == "chain_restart" and p["seq"] == 6 and "database was lost or replaced" in p["text"]
