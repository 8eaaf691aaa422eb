"""Bad input to ``headframe verify``: a clear message naming the place, and the rest still checked."""

from __future__ import annotations

from pathlib import Path

from tests.verify.streams import KEY, Stream, key_file, verify, verify_json, write_jsonl


def _capture(tmp_path: Path, n: int = 10, key: bytes | None = KEY) -> Path:
    s = Stream(tmp_path, key=key)
    s.telemetry(n)
    return write_jsonl(tmp_path / "cap.jsonl", s.docs())


def test_truncated_capture_names_the_line_and_checks_the_rest(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path)
    data = cap.read_bytes()
    cap.write_bytes(data[: len(data) - 40])  # the last line is cut mid-JSON
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1
    assert "cap.jsonl line 10: cut off mid-record" in out and "the lines before it were checked" in out
    assert "seq 1 to 9" in out and "No problems" in out  # seqs 1..9 are intact and verified


def test_garbage_line_names_the_line_and_checks_the_rest(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path)
    lines = cap.read_bytes().split(b"\n")
    lines[3] = lines[3][:50] + b"###" + lines[3][60:]  # seq 4 damaged in place
    lines.insert(6, b"this is not json")
    cap.write_bytes(b"\n".join(lines))
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1
    assert [p["where"] for p in doc["input_problems"]] == ["cap.jsonl line 4", "cap.jsonl line 7"]
    assert "not valid JSON" in doc["input_problems"][1]["what"]
    (gw,) = doc["gateways"]
    assert gw["records"] == 9 and [(p["code"], p["seq"]) for p in gw["problems"]] == [("missing", 4)]


def test_line_that_is_not_a_record(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path)
    with cap.open("ab") as fh:
        fh.write(b'{"gateway": "gw-01", "seq": 11}\n[1, 2]\n')
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1
    whats = [(p["where"], p["what"][:30]) for p in doc["input_problems"]]
    assert whats == [
        ("cap.jsonl line 11", "not a Headframe record: missin"),
        ("cap.jsonl line 12", "expected a JSON object, found "),
    ]


def test_empty_file_is_unusable(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    rc, out, err = verify(capsys, tmp_path / "empty.jsonl", "--key-file", key_file(tmp_path))
    assert rc == 2 and out == "" and "no records to verify: the input is empty" in err


def test_missing_capture_and_nothing_to_verify(tmp_path: Path, capsys) -> None:
    rc, _, err = verify(capsys, tmp_path / "nope.jsonl")
    assert rc == 2 and "nope.jsonl: no such file" in err
    rc, _, err = verify(capsys)
    assert rc == 2 and "nothing to verify" in err


def test_missing_or_empty_key_file(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path)
    rc, out, err = verify(capsys, cap, "--key-file", tmp_path / "absent.key")
    assert rc == 2 and out == "" and "key file" in err and "absent.key: no such file" in err
    (tmp_path / "empty.key").write_bytes(b"\n")
    rc, _, err = verify(capsys, cap, "--key-file", tmp_path / "empty.key")
    assert rc == 2 and "is empty" in err


def test_wrong_key_is_said_once(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path, n=30)
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path, b"not-the-gateway-key", "wrong.key"))
    assert rc == 1
    assert out.count("wrong key?") == 1 and "none of the 30 records matches the chain key given" in out
    assert "Problems (1)" in out  # not 30 times "altered"


def test_wrong_key_still_finds_a_removed_record(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path, n=10)
    lines = cap.read_bytes().split(b"\n")
    del lines[4]
    cap.write_bytes(b"\n".join(lines))
    rc, doc = verify_json(capsys, cap, "--key-file", key_file(tmp_path, b"not-the-gateway-key", "wrong.key"))
    assert rc == 1 and [(p["code"], p["seq"]) for p in doc["gateways"][0]["problems"]] == [("key", None), ("missing", 5)]


def test_without_a_key_says_what_that_means(tmp_path: Path, capsys) -> None:
    (tmp_path / "a").mkdir()
    rc, out, _ = verify(capsys, _capture(tmp_path / "a", key=None))
    assert rc == 1 and "LINKS ONLY — NOT AUTHENTICATED" in out
    assert "cannot be authenticated without the gateway's key" in out
    rc, out, _ = verify(capsys, _capture(tmp_path))  # a keyed stream, no key given: the same
    assert rc == 1 and out.count("Give the gateway's key with --key-file") == 1
    rc, out, _ = verify(capsys, tmp_path / "cap.jsonl", "--no-key-ok")
    assert rc == 0 and "Overall verdict: LINKS ONLY" in out


def test_unkeyed_stream_with_a_key_given(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path, key=None)
    rc, out, _ = verify(capsys, cap, "--key-file", key_file(tmp_path))
    assert rc == 1 and "wrong key?" in out and "They match unkeyed SHA-256" in out
    assert "unkeyed record (a keyed gateway never writes these)" in out
