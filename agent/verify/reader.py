"""Read what a consumer captured (or ``headframe buffer export`` wrote) into checkable entries.

Both inputs are JSON lines. A line is either a record body exactly as the gateway published
it, or an envelope ``{"topic": ..., "payload": <body object or JSON string>, "received": ...}``
as a consumer's logger would write it. A line that cannot be read is reported with its
number and skipped: one bad line must never hide what the rest of the file proves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

#: Fields every record message carries (docs/mqtt.md); without them a line is not a record.
RECORD_FIELDS = ("gateway", "site", "seq", "ts", "kind", "source", "payload", "prev", "chain")


@dataclass(frozen=True)
class Entry:
    """One received message: a chained record or a retained status message."""

    origin: str  # "capture.jsonl line 12": where an inspector can find it
    doc: dict[str, Any]
    topic: str | None = None
    received: str | float | None = None  # as the consumer logged it: ISO text or epoch
    is_status: bool = False
    live: bool = False  # from a capture this verify run made itself: its received times are ours

    @property
    def gateway_key(self) -> tuple[str, str]:
        """(site, gateway) from the body, else from the status topic ``prefix/site/gateway/status``."""
        site, gw = self.doc.get("site"), self.doc.get("gateway")
        if (not site or not gw) and self.topic:
            parts = self.topic.split("/")
            if len(parts) >= 4:
                site, gw = parts[-3], parts[-2]
        return str(site or "?"), str(gw or "?")


@dataclass(frozen=True)
class InputProblem:
    """A line (or file) that could not be used, with the reason and what to do."""

    origin: str
    what: str


@dataclass
class InputSet:
    """Everything read from all inputs, in reading order."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> list[Entry]:
        return [e for e in self.entries if not e.is_status]


class UnusableInput(Exception):
    """An input file that cannot be read at all (missing, unreadable, a directory)."""


def read_jsonl(path: Path, label: str, into: InputSet, *, live: bool = False) -> None:
    """Append the entries of one JSON-lines file to ``into``; bad lines become problems.

    ``live``: the file is the capture this run just wrote, so its ``received`` times can be believed.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnusableInput(f"{path}: no such file; give the path of the capture or export file") from None
    except IsADirectoryError:
        raise UnusableInput(f"{path}: is a directory, not a JSON-lines file") from None
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot be read ({exc.strerror})") from None
    lines = raw.split(b"\n")
    ends_cut = bool(raw) and not raw.endswith(b"\n")
    n_records = n_status = n_bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        last = number == len(lines)
        try:
            entry = _entry(line, where)
        except _BadLine as exc:
            n_bad += 1
            what = str(exc)
            if last and ends_cut and exc.json_error:
                what = (
                    "cut off mid-record: the file ends inside this line (a truncated copy, or the "
                    "capture was stopped while writing); the lines before it were checked"
                )
            into.problems.append(InputProblem(where, what))
            continue
        into.entries.append(replace(entry, live=True) if live else entry)
        if entry.is_status:
            n_status += 1
        else:
            n_records += 1
    into.files.append({"path": str(path), "label": label, "records": n_records, "status": n_status, "unreadable_lines": n_bad})


class _BadLine(ValueError):
    def __init__(self, what: str, *, json_error: bool = False) -> None:
        super().__init__(what)
        self.json_error = json_error


def _loads(data: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _BadLine(f"{what} is not valid JSON ({exc}); the line is damaged or was edited by hand", json_error=True) from None


def _entry(line: bytes, where: str) -> Entry:
    obj = _loads(line, "the line")
    if not isinstance(obj, dict):
        raise _BadLine(f"expected a JSON object, found {type(obj).__name__}")
    topic = received = None
    if "topic" in obj and "seq" not in obj:  # an envelope written by a consumer
        topic = obj["topic"]
        if not isinstance(topic, str):
            raise _BadLine('"topic" must be a string')
        received = obj.get("received")
        body = obj.get("payload")
        if isinstance(body, str):
            body = _loads(body, "the payload string")
        if not isinstance(body, dict):
            raise _BadLine('"payload" must be the message body: a JSON object or a string holding one')
        obj = body
    if (topic is not None and topic.endswith("/status")) or ("status" in obj and "seq" not in obj):
        return Entry(where, obj, topic, received, is_status=True)
    missing = [f for f in RECORD_FIELDS if f not in obj]
    if missing:
        raise _BadLine(f"not a Headframe record: missing {', '.join(missing)} (see docs/mqtt.md)")
    if not isinstance(obj["seq"], int) or isinstance(obj["seq"], bool) or obj["seq"] < 1:
        raise _BadLine(f"seq must be a positive integer, found {obj['seq']!r}")
    if not isinstance(obj["prev"], str) or not isinstance(obj["chain"], str):
        raise _BadLine('"prev" and "chain" must be hex strings')
    return Entry(where, obj, topic, received)
