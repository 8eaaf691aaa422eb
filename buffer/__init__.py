"""The durable store-and-forward queue. Knows nothing of drivers, vision or MQTT."""

from buffer.chain import ChainProblem, verify
from buffer.record import Attachment, Kind, Record, StoredRecord
from buffer.sink import ListSink, RecordSink
from buffer.store import AttachmentTooLarge, BufferStore

__all__ = ["Attachment", "AttachmentTooLarge", "BufferStore", "ChainProblem", "Kind", "ListSink", "Record",
           "RecordSink", "StoredRecord", "verify"]
