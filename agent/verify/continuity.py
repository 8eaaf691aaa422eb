"""Links and sequence continuity of one gateway's records.

* ``prev`` = the predecessor's ``chain`` proves nothing was removed or reordered between two
  records; across a dropped range the gateway's ``records_dropped`` record gives the range's
  own ``prev``/``chain``, so the chain still closes over it;
* every seq from first to last must be present or inside an explained (and verified) drop;
* the only leniency: seqs at the very edges of a capture this ``verify`` run made live itself
  (``agent.verify.window``); they are listed as not proven, never as verified.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from agent.verify.chaincheck import Version
from agent.verify.model import Drop, GatewayReport, Problem
from agent.verify.timefmt import when as when_text
from agent.verify.window import Window
from buffer import chain

NOT_CAPTURED = (
    "deleted, or not captured. If the capture started or ended around them, add --export from the "
    "gateway (what it still holds) and capture longer"
)


def check_continuity(report: GatewayReport, reps: dict[int, Version], drops: list[Drop]) -> None:
    """Walk every seq from first to last: a record, an explained drop, an unproven live edge, or a problem."""
    if not reps:
        return
    ranges = sorted(
        ((int(r["first"]), int(r["last"]), r) for d in drops if d.trusted and d.seqs_assigned for r in d.ranges if _range_ok(r)),
        key=lambda x: x[0],
    )
    first, last = min(reps), max(reps)
    key_unusable = report.key_unusable
    present = sorted(reps)
    starts = [r[0] for r in ranges]
    reach = list(itertools.accumulate((r[1] for r in ranges), max))  # furthest seq covered so far
    window = Window({seq: v.entry.received for seq, v in reps.items() if v.entry.live})
    prev_chain: str | None = None
    prev_seq: int | None = None
    prev_ok = True
    s = first
    while s <= last:
        rep = reps.get(s)
        if rep is not None:
            doc = rep.doc
            linkable = rep.ok or rep.uncovered or key_unusable
            if prev_chain is not None and doc["prev"] != prev_chain and linkable and prev_ok:
                what = f"seq {prev_seq}" if prev_seq == s - 1 else f"the dropped range ending at seq {s - 1}"
                report.problems.append(
                    Problem(
                        "link",
                        f"does not follow {what}: its prev is not that record's chain hash (a record was "
                        "replaced, or records were reordered)",
                        s,
                        str(doc["ts"]),
                        rep.entry.origin,
                    )
                )
            prev_chain, prev_seq, prev_ok = str(doc["chain"]), s, linkable
            s += 1
            continue
        covering = _covering(ranges, starts, reach, s)
        if covering is not None:
            lo, hi, rng = covering
            if lo == s and prev_chain is not None and rng.get("prev") != prev_chain:
                report.problems.append(
                    Problem(
                        "bridge",
                        f"the dropped range {lo}–{hi} does not join the record before it (seq {prev_seq}): "
                        "the range's prev is not that record's chain hash",
                        s,
                        str(reps[prev_seq].doc["ts"]) if prev_seq in reps else None,
                    )
                )
            prev_chain, prev_seq, prev_ok = str(rng.get("chain")), hi, True
            s = hi + 1
            continue
        after_present = present[bisect.bisect_right(present, s)]  # exists: s < last, and last is present
        i = bisect.bisect_right(starts, s)
        nxt = min(after_present, starts[i]) if i < len(starts) else after_present
        _missing(report, reps, window, s, nxt, prev_seq)
        prev_chain, prev_seq, prev_ok = None, nxt - 1, True
        s = nxt


def _missing(report: GatewayReport, reps: dict[int, Version], window: Window, s: int, nxt: int, prev_seq: int | None) -> None:
    """Seqs s..nxt-1 are absent and no drop explains them."""
    after = reps.get(nxt)
    before = reps.get(prev_seq) if prev_seq is not None else None
    n = nxt - s
    span = f"seq {s}" if n == 1 else f"seqs {s}–{nxt - 1}"
    when = (
        f", between seq {prev_seq} at {when_text(before.doc['ts'] if before else None)} and seq {nxt} at "
        f"{when_text(after.doc['ts'] if after else None)}"
    )
    ts = str(before.doc["ts"]) if before else None
    edge = window.edge(s, nxt - 1)
    if edge is not None:
        report.edges.append(
            {
                "first": s,
                "last": nxt - 1,
                "edge": edge,
                "text": (
                    f"{span} not proven (capture edges): not in the live capture{when}, at its {edge}, so probably sent "
                    f"{'before the capture started' if edge == 'start' else 'after it ended'} (each batch leaves in "
                    "priority order); neither verified nor shown deleted"
                ),
            }
        )
    elif after is not None and after.doc["prev"] == chain.GENESIS:
        report.problems.append(
            Problem(
                "chain_restart",
                f"{span} never arrived and the chain starts anew at seq {nxt}{when}. The gateway's "
                "buffer database was lost or replaced; records not yet sent then are gone and no record explains "
                "them",
                s,
                ts,
            )
        )
    else:
        report.problems.append(
            Problem(
                "missing",
                f"missing: {span} ({n} record{'s' if n != 1 else ''}){when}. No records_dropped record "
                f"explains them: {NOT_CAPTURED}",
                s,
                ts,
            )
        )


def _covering(ranges: list[tuple[int, int, Any]], starts: list[int], reach: list[int], s: int) -> tuple[int, int, Any] | None:
    """The dropped range holding seq ``s`` (ranges sorted by first seq), or None; O(log n) when none does."""
    i = bisect.bisect_right(starts, s) - 1
    if i < 0 or reach[i] < s:
        return None
    while i >= 0:
        if ranges[i][0] <= s <= ranges[i][1]:
            return ranges[i]
        i -= 1
    return None


def _range_ok(r: Any) -> bool:
    return (
        isinstance(r, dict)
        and isinstance(r.get("first"), int)
        and isinstance(r.get("last"), int)
        and not isinstance(r["first"], bool)
        and not isinstance(r["last"], bool)
        and 0 < r["first"] <= r["last"]
        and isinstance(r.get("prev"), str)
        and isinstance(r.get("chain"), str)
    )
