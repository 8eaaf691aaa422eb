"""Siemens S7 over ISO-on-TCP with python-snap7's asyncio client (3.x, pure Python).

Imported only when an ``s7`` device is configured (``drivers/registry.py`` loads it by
name), so a gateway without S7 never imports snap7. Each planned block is one S7 "read var"
request built by snap7's protocol layer and sent with ``iso_exchange_buffer``: that way the
item's return code reaches us as a number (0x05 out of range, 0x0A no such DB, 0x03 access
denied) instead of inside an exception's text. A block that reaches past the end of a data
block is bisected until the readable points are read and the others are bad with the reason;
those are not asked for again until ``backoff_interval`` has passed (a DB can be downloaded
longer while the gateway runs).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Sequence

from snap7 import AsyncClient
from snap7.datatypes import S7Area, S7WordLen
from snap7.error import S7ConnectionError, S7Error, S7ProtocolError, S7TimeoutError
from snap7.s7protocol import S7Protocol
from snap7.type import Parameter

from config.drivers import PointSettings, S7Device, S7Point
from config.s7addr import AREA_CODES
from drivers.errors import BadFrame, DeviceException, Timeout, Unreachable
from drivers.planner import Barrier, Block
from drivers.protocol import BadValue, Values
from drivers.s7_plan import READ_OVERHEAD, S7Block, decode_points, plan_s7, s7_points

# snap7 logs every connect/disconnect at INFO without naming a device: our line per state change says it
logging.getLogger("snap7").setLevel(logging.WARNING)

RC_OK, RC_ACCESS, RC_RANGE, RC_NO_OBJECT = 0xFF, 0x03, 0x05, 0x0A


class OutOfRange(Exception):
    """The PLC answered 0x05: the range reaches outside the area (a DB shorter than configured)."""


def _cause_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def connect_error(exc: BaseException, host: str, port: int, rack_slot: str) -> Unreachable:
    """Why a connect failed, in a technician's words, told apart by exception type."""
    chain = _cause_chain(exc)
    where = f"PLC {host}:{port}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Unreachable(f"{where} refused the connection: nothing listening on the S7 port — check host and port (102)")
    if any(isinstance(e, asyncio.IncompleteReadError | ConnectionResetError) for e in chain):
        return Unreachable(
            f"{where} closed the connection during the S7 handshake — check {rack_slot} "
            "(S7-1200/1500: rack 0 slot 1; S7-300: rack 0 slot 2) and that the CPU allows PUT/GET access"
        )
    if any(isinstance(e, TimeoutError | S7TimeoutError) for e in chain):
        return Unreachable(f"cannot connect to {where}: no answer — check the address, cabling and firewall")
    return Unreachable(f"cannot connect to {where} ({exc})")


def refusal(code: int, where: str) -> DeviceException:
    """An item return code other than success or out-of-range, as a DeviceException."""
    if code == RC_NO_OBJECT:
        return DeviceException(f"{where}: the PLC has no such data block (0x0A) — check the DB number", code)
    if code == RC_ACCESS:
        return DeviceException(
            f"{where}: access denied (0x03) — allow PUT/GET in the CPU's protection settings "
            "and switch off 'optimized block access' for the DB",
            code,
        )
    return DeviceException(f"{where}: the PLC refused the read (return code 0x{code:02X})", code)


class S7Driver:
    """One S7 CPU: one connection, coalesced byte-range reads, values decoded big-endian."""

    def __init__(self, dev: S7Device, connect_slots: asyncio.Semaphore | None = None) -> None:
        self.dev, self.slots = dev, connect_slots
        self.client: AsyncClient | None = None
        #: data bytes one read answer can carry (known after connect; planning uses the asked PDU)
        self.max_bytes = dev.pdu_size - READ_OVERHEAD
        #: point name → (reason, monotonic time) for points past the end of their area
        self.unreadable: dict[str, tuple[str, float]] = {}
        #: requests sent on the wire (blocks, chunks of over-long blocks, bisections); connections made
        self.requests = 0
        self.connects = 0
        #: poll groups run as concurrent tasks: one of them connects, the others wait for it
        self._connecting = asyncio.Lock()

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.get_connected()

    async def connect(self) -> None:
        if self.connected:
            return
        async with self._connecting:
            if self.connected:
                return
            if self.slots is None:
                return await self._connect()
            async with self.slots:
                await self._connect()
        return None

    async def _connect(self) -> None:
        await self._drop()
        dev = self.dev
        conn_type, rack, slot = dev.remote_tsap()
        rack_slot = f"tsap {dev.tsap}" if dev.tsap else f"rack {rack} / slot {slot}"
        client = AsyncClient()
        client.set_connection_type(conn_type)
        client.set_param(Parameter.PDURequest, dev.pdu_size)
        try:
            await asyncio.wait_for(client.connect(dev.host, rack, slot, dev.port), timeout=dev.timeout + 0.5)
        except (TimeoutError, OSError, S7Error) as exc:
            await _quietly_disconnect(client)
            raise connect_error(exc, dev.host, dev.port, rack_slot) from None
        self.client = client
        self.connects += 1
        self.max_bytes = max(1, min(dev.pdu_size, client.get_pdu_length()) - READ_OVERHEAD)

    async def _drop(self, client: AsyncClient | None = None) -> None:
        """Close ``client`` (default: the current one) unless another task already replaced it."""
        if self.client is not None and (client is None or client is self.client):
            old, self.client = self.client, None
            await _quietly_disconnect(old)

    async def close(self) -> None:
        await self._drop()

    # --------------------------------------------------------------------- reading
    def plan(self, points: Sequence[PointSettings], barriers: frozenset[Barrier]) -> list[Block]:
        max_bytes = self.dev.pdu_size - READ_OVERHEAD
        return list(plan_s7(s7_points(points), max_bytes=max_bytes, gap_fill=self.dev.gap_fill))

    async def read(self, block: Block) -> Values:
        assert isinstance(block, S7Block), "the S7 driver plans S7 blocks"
        await self.connect()
        now = time.monotonic()
        values: Values = {}
        ask: list[S7Point] = []
        for p in block.s7_points:
            known = self.unreadable.get(p.name)
            if known is not None and now - known[1] < self.dev.backoff_interval:
                values[p.name] = BadValue(known[0])
            else:
                self.unreadable.pop(p.name, None)
                ask.append(p)
        if ask:
            values.update(await self._read_points(block.area, block.db, ask))
        return values

    async def _read_points(self, area: str, db: int, points: list[S7Point]) -> Values:
        start = min(p.s7.byte for p in points)
        end = max(p.s7.end for p in points)
        try:
            raw = await self._read_bytes(area, db, start, end - start)
        except OutOfRange:
            if len(points) == 1:
                loc = points[0].s7
                reason = (
                    f"{loc.text} is outside {loc.area_name} (out of range, 0x05) — the PLC's block is shorter than configured"
                )
                self.unreadable[points[0].name] = (reason, time.monotonic())
                return {points[0].name: BadValue(reason)}
            ordered = sorted(points, key=lambda q: q.s7.byte)
            mid = len(ordered) // 2
            return {**await self._read_points(area, db, ordered[:mid]), **await self._read_points(area, db, ordered[mid:])}
        return decode_points(points, start, raw)

    async def _read_bytes(self, area: str, db: int, start: int, size: int) -> bytearray:
        """``size`` bytes from ``start``, in as many requests as the negotiated PDU needs."""
        out = bytearray()
        while len(out) < size:
            count = min(size - len(out), self.max_bytes)
            out += await self._request(area, db, start + len(out), count)
        return out

    async def _request(self, area: str, db: int, start: int, count: int) -> bytearray:
        client = self.client
        if client is None:
            raise Unreachable(f"not connected to PLC {self.dev.host}:{self.dev.port}")
        where = f"{f'DB{db}' if area == 'DB' else area} bytes {start}..{start + count - 1}"
        request = client.protocol.build_read_request(S7Area(AREA_CODES[area]), db, start, S7WordLen.BYTE, count)
        self.requests += 1
        try:
            answer = await asyncio.wait_for(client.iso_exchange_buffer(bytearray(request)), timeout=self.dev.timeout)
        except TimeoutError:
            await self._drop(client)
            raise Timeout(f"timeout: PLC {self.dev.host} did not answer a read of {where}") from None
        except (S7ConnectionError, OSError) as exc:
            await self._drop(client)
            raise Unreachable(f"connection to PLC {self.dev.host}:{self.dev.port} lost ({exc})") from None
        try:
            return interpret_answer(client.protocol, request, bytes(answer), count, where)
        except BadFrame:
            await self._drop(client)  # the stream may be out of step: start clean
            raise


def interpret_answer(protocol: S7Protocol, request: bytes, answer: bytes, count: int, where: str) -> bytearray:
    """The ``count`` data bytes of a read-var answer, or why not: ``OutOfRange`` (0x05), a
    ``DeviceException`` (another item return code, or an error in the answer's header), a
    ``BadFrame`` for anything that is no answer to ``request``. Every answer is hostile input:
    nothing else may escape (tests/drivers/test_s7_fuzz.py feeds it mutated real answers)."""
    try:
        response = protocol.parse_response(answer)
        if response.get("sequence") != int.from_bytes(request[4:6], "big"):
            raise S7ProtocolError("the answer belongs to another request (PDU reference differs)")
        code = (response.get("data") or {}).get("return_code", -1)
        if code == RC_RANGE:
            raise OutOfRange(where)
        if code != RC_OK:
            raise refusal(code, where)
        data = bytearray(protocol.extract_read_data(response, S7WordLen.BYTE, count))
    except S7ProtocolError as exc:
        if exc.error_code:  # a well-formed answer whose header carries an error class/code
            raise DeviceException(
                f"{where}: the PLC answered with error 0x{exc.error_code:04X} ({exc})", exc.error_code
            ) from None
        raise BadFrame(f"bad frame: answer to a read of {where} did not parse ({exc})") from None
    except (ValueError, IndexError, KeyError, TypeError, struct.error) as exc:
        raise BadFrame(f"bad frame: answer to a read of {where} did not parse ({type(exc).__name__})") from None
    if len(data) != count:
        raise BadFrame(f"garbage: {len(data)} bytes in the answer to a read of {where}, asked for {count}")
    return data


async def _quietly_disconnect(client: AsyncClient) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), timeout=1.0)
    except (TimeoutError, S7Error, OSError):
        pass
