"""Formatters: a leased record -> an MQTT topic and body. The buffer stores records; the wire
format is the uplink's business, so a platform mapping (Sparkplug B, a provincial template) is
one more class here, nothing in the buffer.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, NamedTuple, Protocol

import orjson

from buffer.record import Kind
from config.schema import Settings

if TYPE_CHECKING:  # the buffer boundary (SPEC: buffer/boundary.py); only its shape is used here
    from buffer.boundary import StoredRecord


class OutboundMessage(NamedTuple):
    topic: str
    payload: bytes


class Formatter(Protocol):
    """One record -> one message. A formatter may also offer ``format_all(rec) -> list[OutboundMessage]``
    (one or more, never none): the drain then publishes them all and acks the record to the buffer
    once every one is acknowledged (platform mappings' ``split: point``)."""

    def format(self, rec: StoredRecord) -> OutboundMessage: ...


class Topics:
    """Topic names from the config: ``{prefix}/{site}/{gateway}/...`` (docs/mqtt.md)."""

    def __init__(self, settings: Settings) -> None:
        g = settings.gateway
        self.root = f"{settings.uplink.topic_prefix}/{g.site}/{g.id}/"
        self.status = self.root + "status"
        #: inbound: the platform's commands to this gateway (docs/mqtt.md, "Commands")
        self.command = self.root + "command"
        self._cache: dict[tuple[Kind, str], str] = {}

    def for_record(self, kind: Kind, source: str) -> str:
        key = (kind, source)
        topic = self._cache.get(key)
        if topic is None:
            topic = self._cache[key] = f"{self.root}{kind.value}/{source}"
        return topic


class JsonFormatter:
    """Today's format (docs/mqtt.md): the chained record document as stored, with each
    attachment's bytes added base64-encoded as ``data`` to its metadata entry."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    def format(self, rec: StoredRecord) -> OutboundMessage:
        topic = self.topics.for_record(rec.kind, rec.source)
        if not rec.attachments:
            return OutboundMessage(topic, rec.doc)  # hot path: the stored bytes go out as they are
        doc = orjson.loads(rec.doc)
        for meta, att in zip(doc.get("attachments", []), rec.attachments, strict=False):
            meta["data"] = base64.b64encode(att.data).decode()
        return OutboundMessage(topic, orjson.dumps(doc))
