"""``records_dropped`` events: what the byte cap, TTL, a full disk or a writer error removed.

A removal is never silent. Records that had a seq are named by ranges of consecutive seqs
with the ``prev`` of the first and the ``chain`` of the last record, so a verifier can bridge
the chain across the hole; records that never got a seq are counted (``seqs_assigned:
false``). The drop record itself is an ordinary chained event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from buffer.record import Kind, Record

#: Ranges per record: keeps one drop record well under a broker's message size limit.
MAX_RANGES = 500

REASONS = ("byte_cap", "ttl", "disk_full", "writer_error", "power_loss")


def seq_ranges(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers, e.g. [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def dropped_records(
    reason: str, victims: Mapping[int, Kind], links: Mapping[int, tuple[str, str]], ts: float, synced: bool | None
) -> list[Record]:
    """Drop events for committed records ``victims`` (seq -> kind) removed for ``reason``.

    ``links`` maps each range boundary seq to its (prev, chain).
    """
    assert reason in REASONS, reason
    ranges = seq_ranges(list(victims))
    out = []
    for i in range(0, len(ranges), MAX_RANGES):
        part = ranges[i : i + MAX_RANGES]
        by_kind: Counter[str] = Counter()
        for first, last in part:
            for seq in range(first, last + 1):
                by_kind[victims[seq].value] += 1
        payload: dict[str, Any] = {
            "event": "records_dropped",
            "reason": reason,
            "count": sum(by_kind.values()),
            "by_kind": dict(sorted(by_kind.items())),
            "ranges": [{"first": f, "last": la, "prev": links[f][0], "chain": links[la][1]} for f, la in part],
        }
        out.append(Record("agent", Kind.EVENT, payload, ts=ts, clock_synced=synced))
    return out


def unassigned_record(reason: str, by_kind: Mapping[str, int], ts: float, synced: bool | None) -> Record:
    """Drop event for records lost before they were committed (they never had a seq)."""
    assert reason in REASONS, reason
    counts = {k: n for k, n in sorted(by_kind.items()) if n}
    return Record(
        "agent",
        Kind.EVENT,
        {"event": "records_dropped", "reason": reason, "count": sum(counts.values()), "by_kind": counts, "seqs_assigned": False},
        ts=ts,
        clock_synced=synced,
    )


def skipped_record(first: int, last: int, head: str, ts: float, synced: bool | None) -> Record:
    """Drop event for seqs ``first..last`` skipped after a power cut (lost from the page cache or never issued).

    Records sent before the cut may still reach a consumer with seqs in this range: they are
    explained here, and the chain resumes at ``head`` (the last record that survived).
    """
    return Record(
        "agent",
        Kind.EVENT,
        {
            "event": "records_dropped",
            "reason": "power_loss",
            "count": last - first + 1,
            "count_is_upper_bound": True,
            "by_kind": {},
            "ranges": [{"first": first, "last": last, "prev": head, "chain": head}],
        },
        ts=ts,
        clock_synced=synced,
    )
