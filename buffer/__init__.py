"""The durable store-and-forward queue. Knows nothing of drivers, vision or MQTT."""

from buffer.chain import ChainProblem, verify
from buffer.record import Attachment, Committed, Kind, Record, StoredRecord
from buffer.sink import ListSink, RecordSink
from buffer.store import AttachmentTooLarge, BufferFull, BufferStore

__all__ = [
    "Attachment",
    "AttachmentTooLarge",
    "BufferFull",
    "BufferStore",
    "ChainProblem",
    "Committed",
    "Kind",
    "ListSink",
    "Record",
    "RecordSink",
    "StoredRecord",
    "verify",
]
