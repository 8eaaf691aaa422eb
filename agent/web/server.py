"""Serve the technician's page on the agent's event loop; a page that cannot start never stops the agent."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.commanddesk import CommandDesk
from agent.control import read_open_alarms
from agent.web.app import WebPage
from agent.web.camera_counts import CameraCounts
from agent.web.camera_routes import CameraRoutes, Producers
from agent.web.config_routes import ConfigRoutes, Reload
from agent.web.configedit import ConfigEditor
from agent.web.device_routes import DeviceRoutes
from agent.web.live import LiveView
from agent.web.probe_routes import Buses, ProbeRoutes
from config.web import WebSettings

if TYPE_CHECKING:
    from buffer.boundary import Buffer

log = logging.getLogger("headframe.web")


class WebServer:
    """Starts and stops the page; the live view subscribes to the buffer from construction."""

    def __init__(
        self,
        cfg: WebSettings,
        db_path: Path,
        buffer: Buffer,
        gateway: str,
        config_path: Path | None = None,
        reload: Reload | None = None,
        buses: Buses | None = None,
        producers: Producers | None = None,
    ) -> None:
        self.cfg, self.db_path = cfg, db_path
        self.live = LiveView()
        self._unsubscribe = buffer.subscribe(self.live.on_commit) if cfg.enabled else (lambda: None)
        self.desk = CommandDesk(buffer) if cfg.enabled else None
        routes = ConfigRoutes(ConfigEditor(config_path), reload) if config_path is not None and reload is not None else None
        probe = ProbeRoutes(buses) if buses is not None else None
        self.page = WebPage(cfg, self.live, self.desk, self._open_alarms, gateway, routes, probe) if self.desk else None
        #: the camera view (docs/web.md, "Cameras"): needs the config editor and the running producers
        self.cameras: CameraRoutes | None = None
        if self.page is not None and routes is not None and producers is not None:
            counts = CameraCounts()
            self._unsub_counts = buffer.subscribe(counts.on_commit)
            self.cameras = CameraRoutes(producers, counts)
        if self.page is not None and routes is not None:
            self.page.extra.append(DeviceRoutes(routes, probe))
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def _open_alarms(self) -> list[dict[str, Any]]:
        alarms, _note = await asyncio.to_thread(read_open_alarms, self.db_path)
        return alarms

    def _ssl(self) -> ssl.SSLContext | None:
        if self.cfg.tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cfg.tls.cert_file, self.cfg.tls.key_file)
        return ctx

    async def start(self) -> bool:
        if self.page is None:
            return False
        try:
            context = self._ssl()
            app = self.page.app()
            if self.cameras is not None:
                self.cameras.add_routes(app, self.page)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.cfg.listen, self.cfg.port, ssl_context=context, reuse_address=True)
            await site.start()
        except (OSError, ssl.SSLError) as exc:
            log.error(
                "web: cannot serve on %s:%s (%s); the agent runs on without the page (web.listen / web.port / web.tls)",
                self.cfg.listen,
                self.cfg.port,
                getattr(exc, "strerror", None) or exc,
            )
            return False
        self._runner = runner
        self.url = f"{'https' if context else 'http'}://{self.cfg.listen}:{self.cfg.port}/"
        log.info("web: technician page on %s", self.url)
        return True

    async def stop(self) -> None:
        self._unsubscribe()
        if self.cameras is not None:
            self._unsub_counts()
        if self.desk is not None:
            self.desk.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
