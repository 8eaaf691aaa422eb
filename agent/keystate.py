"""Which chain key this run uses, compared with the last run: records for a verifier, an alarm for a person.

A key file that is missing or unreadable must not make the gateway dark (a one-command "fake
offline"), so the buffer chains with an emergency key instead (buffer/chainkey.py). This module
turns that into evidence: ``chain_key_unusable`` raised (every start while it lasts) or cleared
(the first start with a usable key again), and ``chain_key_changed`` whenever the key in use
differs from the previous run's, so a verifier knows which key applies from which seq. The
fingerprint of the last key is kept in ``headframe-key.json`` beside the buffer; the key itself
never leaves its file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.atomicfile import atomic_write
from agent.power.boot import iso
from agent.power.runstate import read_json
from buffer.chainkey import ChainKey
from buffer.record import Kind, Record

log = logging.getLogger("headframe.agent")

KEY_STATE_NAME = "headframe-key.json"


@dataclass
class KeyTransition:
    """What to commit at start (with power_loss durability), then ``save()``."""

    records: list[Record]
    health: dict[str, Any]
    state_path: Path
    state: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        """After the records are committed: the next start compares with this key."""
        atomic_write(self.state_path, json.dumps(self.state, sort_keys=True).encode())


def _reason(ck: ChainKey, prev: dict[str, Any] | None) -> str:
    if ck.emergency:
        return "emergency"
    if prev and prev.get("emergency"):
        return "configured key restored"
    if ck.created:
        return "first key created"
    return "no key recorded before" if not prev else "key replaced"


def key_transition(ck: ChainKey, state_dir: Path) -> KeyTransition:
    """Records for this start's key: changed (if it differs from the last run's) and the alarm state."""
    path = Path(state_dir) / KEY_STATE_NAME
    prev = read_json(path)
    fp = ck.fingerprint
    records: list[Record] = []
    if (prev or {}).get("fingerprint") != fp:
        records.append(
            Record(
                "agent",
                Kind.EVENT,
                {
                    "event": "chain_key_changed",
                    "from_fingerprint": (prev or {}).get("fingerprint"),
                    "to_fingerprint": fp,
                    "reason": _reason(ck, prev),
                    "key_file": str(ck.path),
                },
            )
        )
    if ck.emergency:
        text = (
            f"chain key {ck.wanted} is unusable ({ck.problem}); records are chained with the emergency key "
            f"{ck.path} (keep it: a verifier needs it). Fix the key file and restart the agent: the "
            "configured key takes effect at the next restart"
        )
        records.append(
            Record(
                "agent",
                Kind.ALARM,
                {
                    "alarm": "chain_key_unusable",
                    "state": "raised",
                    "severity": "immediate",
                    "key_file": str(ck.wanted),
                    "problem": ck.problem,
                    "emergency_key": str(ck.path),
                    "text": text,
                },
            )
        )
        log.error(
            "chain key: %s. The agent runs on, chaining with the emergency key %s (fingerprint %s); fix %s "
            "and restart the agent (the fix takes effect at the next restart)",
            ck.message,
            ck.path,
            fp,
            ck.wanted,
        )
        health = {
            "state": "emergency",
            "configured": str(ck.wanted),
            "problem": ck.problem,
            "emergency_key": str(ck.path),
            "fingerprint": fp,
        }
    else:
        if prev and prev.get("emergency"):
            records.append(
                Record(
                    "agent",
                    Kind.ALARM,
                    {
                        "alarm": "chain_key_unusable",
                        "state": "cleared",
                        "key_file": str(ck.path),
                        "emergency_key": prev.get("key_file"),
                        "text": f"chain key {ck.path} is usable again; records from this start are chained with it",
                    },
                )
            )
            log.info(
                "chain key: %s is usable again (emergency key %s no longer used; keep it for verification)",
                ck.path,
                prev.get("key_file"),
            )
        health = {"state": "ok", "key_file": str(ck.path), "fingerprint": fp}
    state = {"fingerprint": fp, "emergency": ck.emergency, "key_file": str(ck.path), "since": iso()}
    if prev and prev.get("fingerprint") == fp:
        state["since"] = prev.get("since", state["since"])
    return KeyTransition(records, health, path, state)
