"""A real agent with the technician page and one real camera: vtest.avi streamed as HTTP MJPEG."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.camera_server import CameraServer
from tests.support.agentproc import AgentProcess
from tests.support.broker import MosquittoBroker, free_port
from tests.support.wait import wait_until
from tests.web.browser import Browser

MEDIA = Path(__file__).resolve().parents[2] / "hil" / "media"
CAMERA = "cam-gate"
LINE_PATH = ["cameras", 0, "lines", 0, "points"]
ZONE_PATH = ["cameras", 0, "zones", 0, "polygon"]

CONFIG = """\
# Test site: one camera counting people on a road (this comment must survive the camera editor)
gateway: {{site: test-site, id: gw-test}}
buffer: {{path: {db}, flush_interval: 20ms}}
uplink: {{host: 127.0.0.1, port: {mqtt}, reconnect_min: 0.1s, reconnect_max: 0.5s, keepalive: 5}}
health: {{interval: 1s}}
logging: {{level: INFO, journald: "off"}}
control: {{enabled: false}}
web: {{enabled: true, port: {web}, password_file: {password}}}
shafts:
  - {{name: campus, limit: 20}}
cameras:
  - id: {camera}
    url: {url}
    fps: 5
    telemetry_interval: 1s
    detector: {{model: ssdlite_person_300, threads: 1, score_threshold: 0.5}}
    tamper: {{enabled: false}}
    lines:
      # people walking to the right count "in"
      - {{name: mid, points: [[0.5, 0.15], [0.5, 1.0]], band: 0.015, shaft: campus}}
    zones:
      - {{name: plaza, polygon: [[0.2, 0.3], [0.8, 0.3], [0.8, 1.0], [0.2, 1.0]], limit: 10}}
"""


@dataclass
class CamSite:
    url: str
    agent: AgentProcess
    camera: CameraServer
    config: Path


@pytest.fixture
def cam_site(tmp_path: Path, broker: MosquittoBroker) -> Iterator[CamSite]:
    from tests.web.conftest import PASSWORD, set_password  # (conftest registers this fixture: import here)

    camera = CameraServer({"gate": MEDIA / "vtest.avi"}).start()
    password = tmp_path / "web.password"
    assert set_password(password, PASSWORD).returncode == 0
    web_port = free_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        CONFIG.format(
            db=tmp_path / "buf.db", mqtt=broker.port, web=web_port, password=password, camera=CAMERA, url=camera.url("gate")
        )
    )
    agent = AgentProcess(cfg)
    url = f"http://127.0.0.1:{web_port}"

    def serving() -> bool:
        try:
            with urllib.request.urlopen(url + "/login", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until("the technician page to come up", serving, timeout=30)
        yield CamSite(url, agent, camera, cfg)
    finally:
        if agent.proc.poll() is None:
            agent.terminate()
        camera.stop()


def logged_in(url: str) -> tuple[Browser, str]:
    from tests.web.conftest import PASSWORD

    b = Browser(url)
    assert b.login(PASSWORD)[0] == 303
    return b, b.csrf()


def call(b: Browser, method: str, path: str, token: str | None = None, body: Any = None, lang: str = "en") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Accept-Language": lang, **({"X-CSRF-Token": token} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = b.call(method, path, data, headers)
    return status, json.loads(raw)
