"""``headframe verify``: check a captured record stream and/or a buffer export, per gateway.

Use ``verify_inputs`` from code; ``agent.verify.cli`` is the command. See docs/evidence.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.verify.chaincheck import check_chain
from agent.verify.continuity import check_continuity
from agent.verify.evidence import collect, power_loss_exposure, silences, status_rows
from agent.verify.keys import KeySpec, Schedule, bind
from agent.verify.model import GatewayReport, Report
from agent.verify.reader import Entry, InputSet


def verify_inputs(
    inputs: InputSet,
    keys: Sequence[KeySpec | bytes],
    *,
    silence_s: float = 300.0,
    allow_edges: bool = False,
    no_key_ok: bool = False,
) -> Report:
    """Every check on every gateway found in ``inputs``, each with the keys bound to it.

    A bare key (``bytes``, or a ``KeySpec`` without gateway) is accepted only when the input holds
    one gateway; otherwise ``agent.verify.keys.KeyBindingError``.
    ``silence_s``: records further apart than this, with no gap record between, are listed.
    ``allow_edges`` / ``no_key_ok``: exit 0 despite unproven live-capture edges / without a key.
    """
    groups: dict[tuple[str, str], tuple[list[Entry], list[Entry]]] = {}
    for e in inputs.entries:
        recs, stats = groups.setdefault(e.gateway_key, ([], []))
        (stats if e.is_status else recs).append(e)
    unknown = groups.pop(("?", "?"), None)
    with_records = [k for k, (recs, _) in groups.items() if recs]
    if unknown is not None:
        if len(with_records) == 1:  # a status body without topic or ids: it can only be that gateway's
            groups[with_records[0]][1].extend(unknown[1])
        else:
            groups[("?", "?")] = unknown
    schedules = bind(keys, sorted(with_records))
    gateways = []
    for (site, gw), (recs, stats) in sorted(groups.items()):
        rep = GatewayReport(site, gw)
        reps = check_chain(rep, recs, schedules.get((site, gw), Schedule([])))
        collect(rep, reps)
        check_continuity(rep, reps, rep.drops)
        power_loss_exposure(rep, reps)
        silences(rep, reps, silence_s)
        rep.status = status_rows(stats)
        rep.problems.sort(key=lambda p: (p.code != "key", p.seq or 0))
        gateways.append(rep)
    problems = [{"where": p.origin, "what": p.what} for p in inputs.problems]
    return Report(inputs.files, bool(keys), len(keys), gateways, problems, allow_edges, no_key_ok)


__all__ = ["verify_inputs"]
