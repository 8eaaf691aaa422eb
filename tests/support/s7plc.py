"""A real S7 peer for tests and benches: python-snap7's own S7 server on a free port.

snap7 3.x ships a pure-Python server speaking ISO-on-TCP / S7 (COTP handshake, PDU
negotiation, read-var with per-item return codes: 0x05 past the end of an area, 0x0A for a
DB that does not exist). It listens on any port, so tests never need port 102 or root.
"""

from __future__ import annotations

import logging
import struct
import threading

from snap7.server import Server
from snap7.type import SrvArea

from tests.support.broker import free_port, wait_port

#: our area letters → the server's area enum (I = process inputs PE, Q = process outputs PA)
SRV_AREAS = {"DB": SrvArea.DB, "M": SrvArea.MK, "I": SrvArea.PE, "Q": SrvArea.PA}

# the server logs every out-of-range read and every client at WARNING/INFO; the tests check our words
logging.getLogger("snap7.server").setLevel(logging.ERROR)


class S7Plc:
    """Memory areas the test can change between reads, served on ``port``; counts answered reads."""

    def __init__(self, areas: dict[tuple[str, int], int], port: int | None = None) -> None:
        self.port = port or free_port()
        self.memory = {key: bytearray(size) for key, size in areas.items()}
        self.reads = 0
        self._count_lock = threading.Lock()
        self.server: Server | None = None

    def _counted(self, _event: object) -> None:
        with self._count_lock:
            self.reads += 1

    def start(self) -> S7Plc:
        server = Server(log=False)
        for (area, index), data in self.memory.items():
            server.register_area(SRV_AREAS[area], index, data)
        server.set_read_events_callback(self._counted)
        server.start(tcp_port=self.port)
        self.server = server
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def write(self, area: str, index: int, offset: int, data: bytes) -> None:
        """Change bytes the way the PLC program would, under the server's area lock."""
        mem = self.memory[(area, index)]
        if self.server is None:
            mem[offset : offset + len(data)] = data
            return
        self.server.lock_area(SRV_AREAS[area], index)
        try:
            mem[offset : offset + len(data)] = data
        finally:
            self.server.unlock_area(SRV_AREAS[area], index)

    def pack(self, area: str, index: int, offset: int, fmt: str, *values: object) -> None:
        self.write(area, index, offset, struct.pack(fmt, *values))

    def string(self, area: str, index: int, offset: int, capacity: int, text: str) -> None:
        """An S7 STRING[capacity]: max length, actual length, then the characters."""
        raw = text.encode("latin-1")
        self.write(area, index, offset, bytes([capacity, len(raw)]) + raw.ljust(capacity, b"\0"))
