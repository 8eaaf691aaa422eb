"""A TCP proxy between agent and broker that injects link faults.

Modes: ``pass``; ``drop`` (close every connection, refuse new ones: link down, RST);
``blackhole`` (accept and hold connections but forward nothing: a dead route, no RST);
``delay`` (forward after ``delay_s``); ``flap`` (alternate pass/drop every ``flap_s``).
"""

from __future__ import annotations

import asyncio
import threading
import time


class FaultProxy:
    def __init__(self, listen_port: int, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.listen_port, self.target = listen_port, (target_host, target_port)
        self.mode = "pass"
        self.delay_s = 0.5
        self.flap_s = 2.0
        self._conns: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-proxy")
        self._server: asyncio.base_events.Server | None = None
        self._flap_started = time.monotonic()

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server:
                self._server.close()
            for w in list(self._conns):
                w.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def set_mode(self, mode: str, **params: float) -> None:
        if mode not in ("pass", "drop", "blackhole", "delay", "flap"):
            raise ValueError(f"unknown proxy mode {mode!r}")
        self.mode = mode
        self.delay_s = params.get("delay_s", self.delay_s)
        self.flap_s = params.get("flap_s", self.flap_s)
        self._flap_started = time.monotonic()
        if mode in ("drop", "flap"):
            self._loop.call_soon_threadsafe(self._drop_all)

    def _effective(self) -> str:
        if self.mode != "flap":
            return self.mode
        return "pass" if int((time.monotonic() - self._flap_started) / self.flap_s) % 2 else "drop"

    def _drop_all(self) -> None:
        for w in list(self._conns):
            w.transport.abort()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._effective() == "drop":
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._conns.update({writer, up_w})
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        for w in (writer, up_w):
            self._conns.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction. In a black hole the bytes are held (the peer sees silence, not a
        reset) and sent when the route is back; but a sender that gives up inside the black hole
        (closes its socket) never has them arrive, as on a real dead route."""
        held = bytearray()
        while True:
            try:
                data: bytes | None = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                data = None  # nothing new: look at the mode again
            mode = self._effective()
            if mode == "drop":
                writer.transport.abort()
                return
            if data == b"" and mode == "blackhole":
                writer.transport.abort()
                return
            if data:
                held += data
            if held and mode != "blackhole":
                if mode == "delay":
                    await asyncio.sleep(self.delay_s)
                writer.write(bytes(held))
                held.clear()
                await writer.drain()
            if data == b"":
                break
        writer.close()
