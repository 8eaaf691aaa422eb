"""Add one device entry to the config text, touching nothing else in the file.

The technician's form becomes one ``devices:`` entry; the loader (through the config editor)
decides whether it is valid — this module only writes it where it belongs, so the diff the
technician sees is that entry and nothing else: comments, order and layout of the file stay.
A JSON file (YAML's subset, as written by tools) stays JSON. Values are written as JSON
scalars (quoted strings), so nothing typed into the form can become YAML structure.
"""

from __future__ import annotations

import json
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from config import ConfigError, parse_yaml

#: which form fields each protocol's entry takes, in the order written
FIELDS = {
    "modbus_tcp": ("host", "port", "unit"),
    "modbus_rtu": ("bus", "unit"),
    "dlt645": ("bus", "address"),
}
NUMERIC = {"port", "unit"}


class NotEditable(Exception):
    """The file on disk cannot be extended (it does not parse); the technician fixes it first."""


def device_entry(form: dict[str, Any]) -> dict[str, Any]:
    """The ``devices:`` entry for a form (only what was filled in; numbers typed as text become numbers)."""
    protocol = str(form.get("protocol", ""))
    entry: dict[str, Any] = {"id": form.get("id"), "protocol": protocol, "profile": form.get("profile")}
    for key in FIELDS.get(protocol, ()):
        value = form.get(key)
        if value is None or value == "":
            continue
        if key in NUMERIC and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        entry[key] = value
    if form.get("interval"):
        entry["groups"] = [{"name": "default", "interval": form["interval"]}]
    return entry


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _block(entry: dict[str, Any], indent: int) -> str:
    pad = " " * indent
    lines = []
    for n, (key, value) in enumerate(entry.items()):
        text = _scalar(value)
        lines.append(f"{pad}{'- ' if n == 0 else '  '}{key}: {text}\n")
    return "".join(lines)


def add_device(text: str, entry: dict[str, Any]) -> str:
    """``text`` with ``entry`` appended to ``devices:`` (created at the end if there is none)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return _add_json(text, doc, entry)
    try:
        tree = parse_yaml(text, "config")
    except ConfigError as exc:
        raise NotEditable(str(exc)) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise NotEditable("the file is not a mapping of keys")
    if not text.endswith("\n") and text:
        text += "\n"
    lines = text.splitlines(keepends=True)
    if "devices" not in tree:
        return text + "devices:\n" + _block(entry, 2)
    seq = tree["devices"]
    start = tree.lc.key("devices")[0]
    if seq is None:
        return "".join(lines[: start + 1]) + _block(entry, 2) + "".join(lines[start + 1 :])
    if not isinstance(seq, CommentedSeq):
        raise NotEditable("'devices:' is not a list")
    if seq.fa.flow_style() or len(seq) == 0:
        raise NotEditable("'devices:' is written as [ ... ] on one line; add the device in the editor below")
    first = lines[seq.lc.item(0)[0]]
    indent = len(first) - len(first.lstrip(" "))
    later = [tree.lc.key(k)[0] for k in tree if tree.lc.key(k)[0] > start]
    end = min(later) if later else len(lines)
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return "".join(lines[:end]) + _block(entry, indent) + "".join(lines[end:])


def _add_json(text: str, doc: dict[str, Any], entry: dict[str, Any]) -> str:
    """Re-written the way it was written (indent guessed from the file), with the entry added."""
    stripped = [line for line in text.splitlines() if line.strip()]
    indent = None
    if len(stripped) > 1:
        second = stripped[1]
        indent = len(second) - len(second.lstrip(" ")) or None
    devices = doc.get("devices")
    doc["devices"] = [*(devices if isinstance(devices, list) else []), entry]
    return json.dumps(doc, indent=indent, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
