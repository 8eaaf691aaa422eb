"""Integrity chain: each message carries a hash over its content and its predecessor's hash.

A consumer that receives the messages of one gateway can prove continuity: message n's
``prev`` must equal message n-1's ``chain``, and ``chain`` must equal the hash recomputed
from the message. A removed or altered record breaks the chain at that point. With a
per-gateway secret the hash is an HMAC, so a party without the key cannot forge a chain.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes that are hashed: the message without ``chain`` and without attachment data."""
    clean = {k: v for k, v in doc.items() if k != "chain"}
    if "attachments" in clean:
        clean["attachments"] = [{k: v for k, v in a.items() if k != "data"} for a in clean["attachments"]]
    return orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)


def link(prev: str, doc: dict[str, Any], key: bytes | None) -> str:
    """Hash of ``doc`` chained to ``prev`` (hex). ``doc['prev']`` must already be ``prev``."""
    return link_bytes(prev, canonical(doc), key)


def link_bytes(prev: str, canon: bytes, key: bytes | None) -> str:
    """Hash of already-canonical bytes chained to ``prev`` (hex)."""
    data = prev.encode() + b"\n" + canon
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    what: str


def verify(messages: Iterable[dict[str, Any]], key: bytes | None = None) -> list[ChainProblem]:
    """Check a gateway's messages (any order, duplicates allowed) for tampering and gaps.

    Returns one problem per broken link: a hash that does not match its content, or a
    message whose ``prev`` is not the ``chain`` of the message before it.
    """
    by_seq: dict[int, dict[str, Any]] = {}
    for msg in messages:
        by_seq.setdefault(int(msg["seq"]), msg)
    problems: list[ChainProblem] = []
    previous: dict[str, Any] | None = None
    for seq in sorted(by_seq):
        msg = by_seq[seq]
        if link(msg["prev"], msg, key) != msg["chain"]:
            problems.append(ChainProblem(seq, "hash does not match content (altered, or wrong key)"))
        if previous is not None and msg["prev"] != previous["chain"]:
            problems.append(ChainProblem(seq, f"does not follow seq {previous['seq']} (record(s) missing)"))
        previous = msg
    return problems
