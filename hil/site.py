"""The simulated site: broker, PLC (TCP), RTU meter and DL/T 645 meter on socat pty pairs,
cameras streaming real video over HTTP MJPEG and, when asked (``with_ups``), a real UPS
daemon (upsd + dummy-ups). Writes a Headframe config pointing at it all.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hil.camera_server import CameraServer
from hil.lifetime import end, spawn
from hil.net import free_port
from hil.sim.dlt645_meter import MeterSimulator
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from hil.sim.plc import PlcSimulator, ProcessModel
from hil.sim.ups import NutServer

MEDIA = Path(__file__).resolve().parent / "media"


def pty_pair() -> tuple[str, str, subprocess.Popen[bytes]]:
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed (scripts/setup.sh installs it)")
    proc = spawn(["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stderr=subprocess.PIPE)
    paths: list[str] = []
    assert proc.stderr is not None
    while len(paths) < 2:
        line = proc.stderr.readline().decode()
        if not line:
            raise RuntimeError("socat did not create a pty pair")
        m = re.search(r"PTY is (\S+)", line)
        if m:
            paths.append(m.group(1))
    return paths[0], paths[1], proc


@dataclass
class Site:
    workdir: Path
    broker_port: int = 0
    plc_port: int = 0
    model: ProcessModel = field(default_factory=ProcessModel)
    #: start upsd + dummy-ups (only scenarios about mains need it: it costs two processes)
    with_ups: bool = False
    ups: NutServer | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stoppers: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Site:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker_port = self.broker_port or free_port()
        self._start_broker()
        self.plc_port = self.plc_port or free_port()
        self.plc = PlcSimulator(self.plc_port, self.model).start()
        self.stoppers.append(self.plc.stop)
        # RS-485 bus with an SDM630-like meter (unit 1)
        self.rtu_agent_end, rtu_sim_end, p1 = pty_pair()
        self.procs.append(p1)
        self.meter_image = RegisterImage(size=400)
        self.rtu = ServerThread({1: self.meter_image}, serial_port=rtu_sim_end).start()
        self.stoppers.append(self.rtu.stop)
        # DL/T 645 meter on its own line (2400 8E1)
        self.dlt_agent_end, dlt_sim_end, p2 = pty_pair()
        self.procs.append(p2)
        self.dlt = MeterSimulator(dlt_sim_end, address="202611240001").start()
        self.dlt.on_request = self._dlt_values
        self.stoppers.append(self.dlt.stop)
        self.cameras = CameraServer(
            {"shaft": MEDIA / "vtest.avi", "seal": MEDIA / "tree.avi"},
            clips={"people": MEDIA / "vtest.avi", "empty": MEDIA / "tree.avi"},
        ).start()
        self.stoppers.append(self.cameras.stop)
        if self.with_ups:
            self.ups = NutServer(self.workdir / "ups", ups="site-ups").start()
            self.stoppers.append(self.ups.stop)
        threading.Thread(target=self._meter_loop, daemon=True).start()
        return self

    def _start_broker(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        lines = [f"listener {self.broker_port} 127.0.0.1", "allow_anonymous true", "persistence false", "max_queued_messages 0"]
        import os

        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.procs.append(spawn(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.broker_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def _dlt_values(self, meter: MeterSimulator) -> None:
        kw = self.model.power_kw() * 0.4  # the fan feeder's share
        meter.values["02030000"] = kw
        meter.values["00010000"] = round(meter.values.get("00010000", 0) + kw / 3600, 2)

    def _meter_loop(self) -> None:
        energy = 52340.0
        while not self._stop.is_set():
            kw = self.model.power_kw()
            energy += kw / 3600
            for addr, value in (
                (0, 230.1),
                (2, 229.7),
                (4, 231.2),
                (6, kw * 1000 / 690),
                (8, kw * 1000 / 690),
                (10, kw * 1000 / 690),
                (52, kw * 1000),
                (70, 50.0),
                (72, energy),
                (342, energy),
            ):
                self.meter_image.set_float("input", addr, value)
            self._stop.wait(0.5)

    def config(self, path: Path, buffer_path: Path, declared: str = "operating") -> Path:
        """The agent's config for this site; ``declared`` is the site's state on paper (rules.site)."""
        doc = {
            "gateway": {"site": "sim-mine", "id": "gw-sim"},
            "buffer": {"path": str(buffer_path), "max_bytes": "256MiB"},
            "uplink": {
                "host": "127.0.0.1",
                "port": self.broker_port,
                "reconnect_min": "0.2s",
                "reconnect_max": "2s",
                "keepalive": "5s",
            },
            "health": {"interval": "5s"},
            "buses": [
                {"name": "rs485-1", "port": self.rtu_agent_end, "baudrate": 9600, "timeout": "0.3s"},
                {"name": "meter-645", "port": self.dlt_agent_end, "baudrate": 2400, "parity": "E", "timeout": "1s"},
            ],
            "devices": [
                {
                    "id": "plc-hoist",
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": self.plc_port,
                    "profile": "siemens_s7_1200_hoist",
                    "groups": [{"name": "default", "interval": "1s"}],
                    # a dead PLC is probed every 5 s (default 30 s), so device_dies sees it return quickly
                    "backoff_interval": "5s",
                },
                {
                    "id": "meter-main",
                    "protocol": "modbus_rtu",
                    "bus": "rs485-1",
                    "unit": 1,
                    "profile": "eastron_sdm630",
                    "groups": [{"name": "default", "interval": "2s"}],
                    "timeout": "0.3s",
                },
                {
                    "id": "meter-fan",
                    "protocol": "dlt645",
                    "bus": "meter-645",
                    "address": "202611240001",
                    "profile": "dlt645_three_phase",
                    "groups": [{"name": "default", "interval": "5s"}],
                    "timeout": "1s",
                },
            ],
            "operating_state": {
                "enabled": True,
                "power_points": ["meter-main.p_total"],
                "on_above_kw": 120,
                "off_below_kw": 70,
                "min_duration": "5s",
            },
            "rules": {
                "site": {
                    "sections": [
                        {
                            "name": "site",
                            "state": declared,
                            "clear_after": "20s",
                            "max_age": "30s",
                            # a stopped mine keeps draining and ventilating: these run and raise nothing
                            "expected_loads": [
                                "plc-hoist.fan_running",
                                "plc-hoist.pump1_running",
                                "plc-hoist.pump2_running",
                                "meter-fan.p_total",
                            ],
                            # the hoist motor current stands in for a hoist feeder meter (the sim has one site meter)
                            "activity": {
                                "power": [{"point": "plc-hoist.hoist_current", "above": 10}],
                                "run_bits": ["plc-hoist.hoist_running", "plc-hoist.belt_running"],
                                "seal_cameras": ["cam-seal"],
                            },
                        }
                    ]
                }
            },
            "shafts": [{"name": "main-shaft", "limit": 50}],
            "cameras": [
                {
                    "id": "cam-shaft",
                    "url": self.cameras.url("shaft"),
                    "fps": 4,
                    "role": "shaft",
                    "lines": [{"name": "wellhead", "points": [[0.5, 0.15], [0.5, 1.0]], "shaft": "main-shaft"}],
                    "zones": [{"name": "landing", "polygon": [[0.2, 0.3], [0.8, 0.3], [0.8, 1], [0.2, 1]], "limit": 10}],
                },
                {"id": "cam-seal", "url": self.cameras.url("seal"), "fps": 2, "role": "seal", "seal": {"classes": ["person"]}},
            ],
        }
        if self.ups is not None:
            doc["power"] = self.ups.power_config()
        path.write_text(json.dumps(doc, indent=2))
        return path

    def stop(self) -> None:
        self._stop.set()
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:
                pass
        for proc in self.procs:
            end(proc)
