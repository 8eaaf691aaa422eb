"""Evidence clips on disk, checked against their chained ``evidence_clip`` records.

A clip is too large for a record's attachment, so the camera worker writes it under the buffer
directory and the chain holds its path, size and SHA-256 (docs/rules.md, "Hot work"). Given
the directory the paths are relative to (the gateway's buffer directory, or the
``<export>.clips`` directory ``headframe buffer export -o`` writes), every clip named by a record
in the inputs is re-hashed: a missing, replaced or damaged file is a problem at that seq.

A clip the recorder deleted to keep its disk budget is named by a chained
``evidence_clip_removed`` record (vision/clips.py): missing is then what the chain says, not a
problem; it is counted as removed. A removed clip's record still proves which bytes were
recorded, not what they showed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from agent.verify.model import GatewayReport, Problem
from agent.verify.reader import Entry


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def clip_problem(root: Path, payload: dict[str, object]) -> str | None:
    """Why the clip a record names does not match it, or None when it does."""
    name = payload.get("file")
    if not isinstance(name, str) or not name:
        return "evidence_clip record without a file name"
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        return f"evidence clip {name!r} points outside the evidence directory; refused"
    if not path.is_file():
        return f"evidence clip {name} is missing under {root}"
    size = path.stat().st_size
    if size != payload.get("size") or _sha256(path) != payload.get("sha256"):
        return f"evidence clip {name} does not match the size/sha256 in its chained record: replaced or damaged"
    return None


#: a removal: (gateway, file) -> [(seq of the removal record, size it names), ...]
Removals = dict[tuple[tuple[str, str], str], list[tuple[int, object]]]


def removed_clips(gateways: list[GatewayReport], entries: list[Entry]) -> Removals:
    """The ``evidence_clip_removed`` records that can excuse a missing clip: only those whose own
    seq has no problem in their gateway's report (a forged, altered or unlinked record excuses
    nothing; with no key the report already says the stream is not authenticated)."""
    bad = {((g.site, g.gateway), pr.seq) for g in gateways for pr in g.problems if pr.seq is not None}
    removed: Removals = {}
    for e in entries:
        payload = e.doc.get("payload")
        if isinstance(payload, dict) and payload.get("event") == "evidence_clip_removed":
            name, seq = payload.get("file"), int(e.doc["seq"])
            if isinstance(name, str) and (e.gateway_key, seq) not in bad:
                removed.setdefault((e.gateway_key, name), []).append((seq, payload.get("size")))
    return removed


def _excused(removed: Removals, gateway: tuple[str, str], name: str, clip_seq: int, size: object) -> bool:
    """Take the first removal of this clip: after the clip's record, naming its size (each once)."""
    for i, (seq, rsize) in enumerate(removed.get((gateway, name), [])):
        if seq > clip_seq and rsize == size:
            del removed[(gateway, name)][i]
            return True
    return False


def check_clips(gateways: list[GatewayReport], entries: list[Entry], root: Path) -> tuple[int, int]:
    """Check every clip named in ``entries`` (each seq once); problems go to its gateway.
    Returns (clips checked, clips missing because a verified record says they were removed)."""
    reports = {(g.site, g.gateway): g for g in gateways}
    removed = removed_clips(gateways, entries)
    gone = 0
    seen: set[tuple[tuple[str, str], int]] = set()
    clips = [e for e in entries if isinstance(p := e.doc.get("payload"), dict) and p.get("event") == "evidence_clip"]
    for e in sorted(clips, key=lambda e: int(e.doc["seq"])):
        payload = e.doc["payload"]
        key = (e.gateway_key, int(e.doc["seq"]))
        rep = reports.get(e.gateway_key)
        if key in seen or rep is None:
            continue
        seen.add(key)
        name = payload.get("file")
        if (
            isinstance(name, str)
            and not (root / name).exists()
            and _excused(removed, e.gateway_key, name, key[1], payload.get("size"))
        ):
            gone += 1
            continue
        problem = clip_problem(root, payload)
        if problem is not None:
            rep.problems.append(Problem("clip", problem, key[1], str(e.doc.get("ts")), e.origin))
    return len(seen) - gone, gone
