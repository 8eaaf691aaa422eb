"""Register probe and RS-485 unit scan from the page — the same code as ``headframe probe``/``scan``.

On a serial bus the agent already polls, the page's request goes through the agent's own bus
(its FIFO lock): polling and the probe take turns, nobody fights over the port. The page only
opens serial ports the configuration names; Modbus TCP reaches any host the technician types
(that is what a probe is for), with bounded counts and timeouts, one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import Field, ValidationError

from agent.web.sessions import Session
from config.drivers import BusSettings, RegisterTable
from config.types import Ident, StrictModel
from drivers import dlt645_driver
from drivers.bus import SerialBus
from drivers.errors import DriverError
from drivers.messages import reason_text
from drivers.probe import ReadResult, RegisterRead, ValueType, read_rtu, read_tcp, scan_units

if TYPE_CHECKING:
    from agent.web.app import WebPage

log = logging.getLogger("headframe.web")

HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9A-Fa-f:]+\]?$"


class ProbeRequest(StrictModel):
    protocol: Literal["modbus_tcp", "modbus_rtu"]
    host: str | None = Field(default=None, pattern=HOST)
    port: int = Field(default=502, ge=1, le=65535)
    bus: Ident | None = None
    unit: int = Field(default=1, ge=0, le=255)
    table: RegisterTable = RegisterTable.HOLDING
    address: int = Field(ge=0, le=65535)
    count: int = Field(default=1, ge=1, le=60)
    type: ValueType = "uint16"
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    timeout: float = Field(default=1.0, gt=0.05, le=5.0)


class ScanRequest(StrictModel):
    bus: Ident
    first: int = Field(default=1, ge=1, le=247)
    last: int = Field(default=32, ge=1, le=247)
    register: int = Field(default=0, ge=0, le=65535)
    timeout: float = Field(default=0.15, gt=0.02, le=1.0)
    max_time: float = Field(default=60.0, gt=0, le=120.0)


Buses = Callable[[], tuple[dict[str, BusSettings], dict[str, SerialBus]]]


class ProbeRoutes:
    """``POST /api/probe`` and ``POST /api/scan`` (session and CSRF token required)."""

    def __init__(self, buses: Buses) -> None:
        self.buses = buses
        self.page: WebPage | None = None
        self._one_at_a_time = asyncio.Lock()

    def add_routes(self, app: web.Application, page: WebPage) -> None:
        self.page = page
        app.add_routes([web.post("/api/probe", self.probe), web.post("/api/scan", self.scan)])

    async def _body(self, request: web.Request, model: type[StrictModel]) -> Any:
        assert self.page is not None
        try:
            raw = await request.json()
            return model.model_validate(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(body)"
                return self.page.refuse(request, 400, "bad_request", detail=f"{where}: {first['msg']}")
            return self.page.refuse(request, 400, "bad_request", detail="body is not JSON")

    def _bus(self, name: str) -> tuple[SerialBus, bool] | None:
        """The agent's bus of that name (shared), or a temporary one for a configured bus it does not poll."""
        configured, live = self.buses()
        if name in live:
            return live[name], False
        if name in configured:
            return SerialBus(configured[name]), True
        return None

    async def probe(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return session
        req = await self._body(request, ProbeRequest)
        if isinstance(req, web.Response):
            return req
        if req.protocol == "modbus_tcp" and not req.host:
            return self.page.refuse(request, 400, "bad_request", detail="host: required for modbus_tcp")
        try:
            result = await self.read_registers(req)
        except LookupError:
            return self.page.refuse(request, 400, "bad_request", detail="bus: not a bus of this configuration")
        except DriverError as exc:  # the reason as recorded (English) and in the technician's language
            message = reason_text(exc.reason, self.page.lang(request))
            return web.json_response({"ok": False, "error": exc.reason, "message": message, "kind": type(exc).__name__})
        log.info("web: %s@%s probed %s", session.user, session.address, req.host or req.bus)
        return web.json_response(
            {"ok": True, "raw": [f"{r:04X}" for r in result.raw], "values": [[a, v] for a, v in result.values]}
        )

    async def read_registers(self, req: ProbeRequest) -> ReadResult:
        """One read, one at a time (also the device form's "probe first"); ``LookupError``: no such bus."""
        read = RegisterRead(req.table, req.address, req.count, req.type, req.order)
        async with self._one_at_a_time:
            if req.protocol == "modbus_tcp":
                return await read_tcp(req.host or "", req.port, req.unit, read, req.timeout)
            found = self._bus(req.bus or "")
            if found is None:
                raise LookupError(req.bus)
            bus, temporary = found
            try:
                return await read_rtu(bus, req.unit, read, req.timeout)
            finally:
                if temporary:
                    await bus.close()

    async def read_meter(self, bus_name: str, address: str, di: str, timeout: float) -> float:
        """One DL/T 645 value from a meter on a configured bus (the device form's "probe first")."""
        async with self._one_at_a_time:
            found = self._bus(bus_name)
            if found is None:
                raise LookupError(bus_name)
            bus, temporary = found
            try:
                return await dlt645_driver.read_value(bus, address, di, timeout)
            finally:
                if temporary:
                    await bus.close()

    async def scan(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return session
        req = await self._body(request, ScanRequest)
        if isinstance(req, web.Response):
            return req
        if req.last < req.first:
            return self.page.refuse(request, 400, "bad_request", detail="last: not below first")
        found_bus = self._bus(req.bus)
        if found_bus is None:
            return self.page.refuse(request, 400, "bad_request", detail="bus: not a bus of this configuration")
        bus, temporary = found_bus
        units = list(range(req.first, req.last + 1))
        async with self._one_at_a_time:
            try:
                found, finished = await scan_units(bus, units, req.register, req.timeout, time.monotonic() + req.max_time)
            except DriverError as exc:
                message = reason_text(exc.reason, self.page.lang(request))
                return web.json_response({"ok": False, "error": exc.reason, "message": message, "kind": type(exc).__name__})
            finally:
                if temporary:
                    await bus.close()
        log.info("web: %s@%s scanned bus %s units %d-%d", session.user, session.address, req.bus, req.first, req.last)
        return web.json_response(
            {"ok": True, "finished": finished, "found": [{"unit": f.unit, "answer": f.answer} for f in found]}
        )
