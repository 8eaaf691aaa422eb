"""Build record streams for ``headframe verify`` tests with the real BufferStore (keyed chain).

Evidence records the store does not write yet (``records_dropped``, ``gap``) are appended through
the real store like any record, so they are chained exactly as the agent will chain them.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson

from agent.cli import main
from buffer import BufferStore, Kind, Record, chain

KEY = b"test-chain-key-7f3a9c1e5b2d"
BASE_TS = 1795600000.0  # 2026-11-25, a fixed time so reports are reproducible


def body_of(rec: Any) -> bytes:
    """The leased record's document: ``.doc`` once the boundary lands, ``.body`` today."""
    return getattr(rec, "doc", None) or rec.body


class Stream:
    """A gateway's buffer: append records, drop some as the store would, lease everything."""

    def __init__(self, tmp_path: Path, key: bytes | None = KEY, name: str = "buf.db") -> None:
        self.store = BufferStore(tmp_path / name, gateway="gw-01", site="mine-a", chain_key=key)
        self.n = 0
        self.offset = 0.0  # added to every ts: ``dark(seconds)`` moves the clock on as after an outage

    def ts(self) -> float:
        return BASE_TS + self.offset + 10 * self.n

    def dark(self, seconds: float) -> None:
        self.offset += seconds

    def telemetry(self, count: int, source: str = "meter-main") -> list[int]:
        recs = []
        for _ in range(count):
            recs.append(
                Record(
                    source, Kind.TELEMETRY, {"p_kw": 40.0 + self.n, "e_total": 1200.5 + self.n}, ts=self.ts(), clock_synced=True
                )
            )
            self.n += 1
        return self.store.append(recs)

    def event(self, payload: dict[str, Any], kind: Kind = Kind.EVENT) -> int:
        self.n += 1
        return self.store.append([Record("agent", kind, payload, ts=self.ts(), clock_synced=True)])[0]

    def drop(self, seqs: list[int], reason: str = "byte_cap") -> int:
        """Delete unsent rows as the byte cap would and write the chained ``records_dropped`` record."""
        db = self.store.db
        docs = {s: orjson.loads(db.execute("SELECT body FROM records WHERE seq = ?", (s,)).fetchone()[0]) for s in sorted(seqs)}
        ranges: list[dict[str, Any]] = []
        for s, doc in docs.items():
            if ranges and ranges[-1]["last"] == s - 1:
                ranges[-1].update(last=s, chain=doc["chain"])
            else:
                ranges.append({"first": s, "last": s, "prev": doc["prev"], "chain": doc["chain"]})
        self.store.db.executemany("DELETE FROM records WHERE seq = ?", [(s,) for s in docs])
        db.commit()
        by_kind: dict[str, int] = {}
        for doc in docs.values():
            by_kind[doc["kind"]] = by_kind.get(doc["kind"], 0) + 1
        return self.event(
            {"event": "records_dropped", "reason": reason, "count": len(docs), "by_kind": by_kind, "ranges": ranges}
        )

    def gap(self, from_seq: int, to_seq: int, cause: str = "unplugged", duration_s: float = 11520.0) -> int:
        """A gap record between two records still in the buffer (their ts are taken from them)."""
        ts = {
            s: orjson.loads(self.store.db.execute("SELECT body FROM records WHERE seq = ?", (s,)).fetchone()[0])["ts"]
            for s in (from_seq, to_seq)
        }
        return self.event(
            {
                "event": "gap",
                "cause": cause,
                "from": {"seq": from_seq, "ts": ts[from_seq]},
                "to": {"seq": to_seq, "ts": ts[to_seq]},
                "duration_s": duration_s,
                "energy": [
                    {"source": "meter-main", "point": "e_total", "before_kwh": 1200.5, "after_kwh": 2040.5, "delta_kwh": 840.0},
                    {"source": "meter-2", "point": "e_total", "unknown": "meter not answering"},
                ],
                "camera_faults": [{"source": "cam-1", "alarm": "camera_lost", "from": ts[from_seq], "to": None}],
            }
        )

    def docs(self) -> list[dict[str, Any]]:
        """Every record still in the buffer as the uplink would send it, in seq order."""
        leased = self.store.lease(1_000_000)
        return sorted((orjson.loads(body_of(r)) for r in leased), key=lambda d: d["seq"])


def write_jsonl(
    path: Path, docs: list[dict[str, Any]], *, envelope: str | None = None, received: list[float] | None = None
) -> Path:
    """One line per message: the body (``envelope=None``), or ``{topic, payload, received}`` with the
    payload as an object (``"object"``) or as the JSON text received (``"string"``); ``received``
    gives each line's receive time in seconds after 12:00:00 (default: all at 12:00:00)."""
    lines = []
    for i, d in enumerate(docs):
        if envelope is None:
            lines.append(orjson.dumps(d))
            continue
        topic = f"headframe/{d.get('site')}/{d.get('gateway')}/" + ("status" if "status" in d else f"{d['kind']}/{d['source']}")
        payload: Any = d if envelope == "object" else orjson.dumps(d).decode()
        at = received[i] if received else 0.0
        lines.append(
            orjson.dumps({"topic": topic, "payload": payload, "received": f"2026-11-25T12:{int(at) // 60:02d}:{at % 60:06.3f}Z"})
        )
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def forge(doc: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """Recompute a record's chain as a forger would: plain SHA-256 (``key=None``) or a wrong key."""
    out = {k: v for k, v in doc.items() if k != "chain"}
    data = out["prev"].encode() + b"\n" + chain.canonical(out)
    out["chain"] = hmac.new(key, data, hashlib.sha256).hexdigest() if key else hashlib.sha256(data).hexdigest()
    return out


def verify(capsys: Any, *args: str | Path) -> tuple[int, str, str]:
    """Run ``headframe verify`` in-process; returns (exit code, stdout, stderr)."""
    rc = main(["verify", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def verify_json(capsys: Any, *args: str | Path) -> tuple[int, dict[str, Any]]:
    rc, out, err = verify(capsys, *args, "--json")
    assert out, err
    return rc, orjson.loads(out)


def key_file(tmp_path: Path, key: bytes = KEY, name: str = "chain.key") -> Path:
    """The key as Ansible/the agent writes it: a 0600 file, trailing newline (stripped on read)."""
    path = tmp_path / name
    path.write_bytes(key + b"\n")
    path.chmod(0o600)
    return path
