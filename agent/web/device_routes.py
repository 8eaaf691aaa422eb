"""Add a device from a profile: the form becomes one ``devices:`` entry, saved the config editor's way.

Nothing here validates values or writes files: the entry is put into the config text
(agent/web/device_add.py), the same loader as ``headframe check`` decides, and the save goes
through ``ConfigRoutes.apply`` — stale-version check, atomic write, reload, ``config_applied``
audit record. A refusal carries the loader's problems in the technician's language, with the
key path (``devices[2].port``) as in the file. "Probe first" reads one point of the profile
with the register probe's own code (and its one-at-a-time lock and bus sharing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field, ValidationError

from agent.web import i18n
from agent.web.config_routes import explained
from agent.web.device_add import NotEditable, add_device, device_entry
from agent.web.probe_routes import ProbeRequest, ProbeRoutes
from agent.web.sessions import Session
from config.drivers import PROFILE_FAMILY, Profile, RegisterTable
from config.profiles import known_profiles
from config.types import StrictModel
from drivers.errors import DriverError
from drivers.messages import reason_text

if TYPE_CHECKING:
    from agent.web.app import WebPage
    from agent.web.config_routes import ConfigRoutes

log = logging.getLogger("headframe.web")
NUMERIC_TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")


class DeviceForm(StrictModel):
    """The form as sent; only shapes are checked here — the loader judges the values."""

    profile: str = Field(max_length=80)
    protocol: str = Field(max_length=20)
    id: str = Field(max_length=80)
    host: str | None = Field(default=None, max_length=253)
    port: int | str | None = Field(default=None)
    bus: str | None = Field(default=None, max_length=80)
    unit: int | str | None = Field(default=None)
    address: str | None = Field(default=None, max_length=20)
    interval: str | None = Field(default=None, max_length=20)
    probe: bool = False
    #: the file version the preview was made from (a save against another version is refused)
    hash: str = Field(default="", max_length=80)


class DeviceRoutes:
    """``GET /api/profiles``, ``POST /api/devices/preview``, ``POST /api/devices/add`` (CSRF on posts)."""

    def __init__(self, config: ConfigRoutes, probe: ProbeRoutes | None) -> None:
        self.config, self.probe = config, probe
        self.page: WebPage | None = None

    def add_routes(self, app: web.Application, page: WebPage) -> None:
        self.page = page
        app.add_routes(
            [
                web.get("/api/profiles", self.profiles),
                web.post("/api/devices/preview", self.preview),
                web.post("/api/devices/add", self.add),
            ]
        )

    async def profiles(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session = self.page.guard(request, csrf=False)
        if not isinstance(session, Session):
            return session
        buses = sorted(self.probe.buses()[0]) if self.probe is not None else []
        return web.json_response(
            {
                "profiles": [
                    {
                        "name": name,
                        "title": p.title,
                        "protocols": [dev for dev, family in PROFILE_FAMILY.items() if family == p.protocol],
                        "points": len(p.points),
                        "notes": p.notes,
                    }
                    for name, p in known_profiles().items()
                ],
                "buses": buses,
            }
        )

    async def _form(self, request: web.Request) -> tuple[Session | None, DeviceForm | web.Response]:
        assert self.page is not None
        session = self.page.guard(request, csrf=True)
        if not isinstance(session, Session):
            return None, session
        try:
            return session, DeviceForm.model_validate(await request.json())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            return session, self.page.refuse(request, 400, "bad_request", detail=f"{where}: {first['msg']}")
        except (ValueError, UnicodeDecodeError):
            return session, self.page.refuse(request, 400, "bad_request", detail="body is not JSON")

    def _new_text(self, request: web.Request, form: DeviceForm) -> tuple[str, str] | web.Response:
        """(new config text, hash of the file it was made from), or the refusal."""
        assert self.page is not None
        text, digest = self.config.editor.current()
        try:
            return add_device(text, device_entry(form.model_dump())), digest
        except NotEditable as exc:
            message = i18n.text("not_editable", self.page.lang(request), detail=str(exc))
            return web.json_response({"ok": False, "message": message}, status=409)

    async def preview(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session, form = await self._form(request)
        if session is None or not isinstance(form, DeviceForm):
            return form if isinstance(form, web.Response) else web.Response(status=400)
        made = self._new_text(request, form)
        if isinstance(made, web.Response):
            return made
        text, digest = made
        lang = self.page.lang(request)
        result = await asyncio.to_thread(self.config.editor.check, text)
        if not result.ok:
            return web.json_response(
                {
                    "ok": False,
                    "problems": result.problems,
                    "explained": explained(result, lang),
                    "message": i18n.text("config_invalid", lang),
                },
                status=422,
            )
        answer: dict[str, Any] = {
            "ok": True,
            "diff": result.diff,
            "hash": digest,
            "message": i18n.text("device_preview_ok", lang),
        }
        if form.probe:
            read = await self._probe(form)
            if isinstance(read, str):
                message = i18n.text("probe_failed", lang, reason=reason_text(read, lang))
                return web.json_response({"ok": False, "probe_error": read, "message": message})
            answer["probe"] = read
            answer["message"] = i18n.text("probe_ok", lang, **read) + " " + answer["message"]
        return web.json_response(answer)

    async def add(self, request: web.Request) -> web.StreamResponse:
        assert self.page is not None
        session, form = await self._form(request)
        if session is None or not isinstance(form, DeviceForm):
            return form if isinstance(form, web.Response) else web.Response(status=400)
        made = self._new_text(request, form)
        if isinstance(made, web.Response):
            return made
        text, digest = made
        log.info("web: %s@%s adds device %r from profile %r", session.user, session.address, form.id, form.profile)
        return await self.config.apply(request, session, text, form.hash or digest)

    async def _probe(self, form: DeviceForm) -> dict[str, Any] | str:
        """One point of the profile read from the device: its value, or the driver's reason."""
        profile: Profile | None = known_profiles().get(form.profile)
        if self.probe is None or profile is None or not profile.points:
            return "no probe available for this profile"
        point = profile.points[0]
        try:
            if form.protocol == "dlt645":
                value: object = await self.probe.read_meter(form.bus or "", form.address or "", point.di or "", 1.5)
            else:
                numeric = point.type in NUMERIC_TYPES
                req = ProbeRequest.model_validate(
                    {
                        "protocol": form.protocol,
                        "host": form.host,
                        "port": form.port if form.port is not None else 502,
                        "bus": form.bus,
                        "unit": form.unit if form.unit is not None else 1,
                        "table": point.table
                        if numeric or point.table in (RegisterTable.COIL, RegisterTable.DISCRETE)
                        else "holding",
                        "address": point.address,
                        "type": point.type if numeric else "uint16",
                        "order": point.order,
                    }
                )
                result = await self.probe.read_registers(req)
                value = result.values[0][1]
                if isinstance(value, int | float) and numeric:
                    value = round(value * point.scale + point.offset, 6)
        except DriverError as exc:
            return exc.reason
        except (LookupError, ValidationError) as exc:
            return f"cannot probe with these settings ({exc})"
        return {"point": point.name, "value": value, "unit": point.unit}
