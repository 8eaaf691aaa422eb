"""A Modbus TCP PLC simulator with a process model: hoist, main fan, drainage pumps, belt.

The register layout is the ``siemens_s7_1200_hoist`` profile (drivers/profiles). Power
draw follows the process so meters and the site operating state see a consistent plant; in
``secretly_running`` mode the site is "sealed" on paper while the hoist and belt run; in
``pumps_and_fans`` only the expected loads of a stopped mine run (drainage, main fan).
"""

from __future__ import annotations

import math
import struct
import threading
import time

from hil.sim.modbus_slaves import RegisterImage, ServerThread


class ProcessModel:
    def __init__(self) -> None:
        self.mode = "operating"  # operating | stopped | secretly_running | pumps_and_fans
        self.t0 = time.monotonic()
        self.trips = 0
        self.run_hours = 1234

    def state(self) -> dict[str, float | bool]:
        t = time.monotonic() - self.t0
        running = self.mode in ("operating", "secretly_running")
        hoist_running = running and (t % 60) < 40
        speed = 8.0 * math.sin(math.pi * (t % 60) / 40) if hoist_running else 0.0
        fan = self.mode in ("operating", "pumps_and_fans")  # a stopped mine still ventilates when it must
        belt = running
        pumps = (t % 120) < 70
        return {
            "hoist_running": hoist_running,
            "hoist_speed": round(speed, 2),
            "hoist_position": round(400 * (1 - math.cos(math.pi * (t % 60) / 40)) / 2, 1) if hoist_running else 0.0,
            "hoist_current": round(abs(speed) * 45 + (20 if hoist_running else 0), 1),
            "fan_running": fan,
            "fan_speed": 740.0 if fan else 0.0,
            "pump1_running": pumps,
            "pump2_running": pumps and (t % 120) < 30,
            "sump_level": round(2.0 + 0.8 * math.sin(t / 40), 2),
            "belt_running": belt,
            "belt_speed": 2.5 if belt else 0.0,
            "belt_load": round(60 + 20 * math.sin(t / 15), 1) if belt else 0.0,
        }

    def power_kw(self) -> float:
        s = self.state()
        return round(
            5.0
            + (180 if s["hoist_running"] else 0)
            + (90 if s["fan_running"] else 0)
            + 30 * s["pump1_running"]
            + 30 * s["pump2_running"]
            + (80 if s["belt_running"] else 0),
            1,
        )


class PlcSimulator:
    """pymodbus TCP server whose registers follow the process model every 200 ms."""

    def __init__(self, port: int, model: ProcessModel) -> None:
        self.model, self.port = model, port
        self.image = RegisterImage(size=100)
        self.server = ServerThread({1: self.image}, tcp_port=port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="plc-model")

    def start(self) -> PlcSimulator:
        self.server.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()

    def set_alive(self, alive: bool) -> None:
        """A PLC that dies (power, cable) and comes back on the same address."""
        if alive:
            self.server = ServerThread({1: self.image}, tcp_port=self.port).start()
        else:
            self.server.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.model.state()
            img = self.image
            for name, addr in (
                ("hoist_speed", 0),
                ("hoist_position", 2),
                ("hoist_current", 4),
                ("fan_speed", 8),
                ("sump_level", 10),
                ("belt_speed", 12),
                ("belt_load", 14),
            ):
                img.set_float("holding", addr, float(s[name]))
            bits = sum(
                1 << i
                for i, k in enumerate(
                    ("hoist_running", "hoist_fault", "estop", "fan_running", "pump1_running", "pump2_running", "belt_running")
                )
                if s.get(k)
            )
            img.set_registers("holding", 6, [bits, self.model.trips])
            hi, lo = struct.unpack(">HH", struct.pack(">I", self.model.run_hours))
            img.set_registers("holding", 16, [hi, lo])
            self._stop.wait(0.2)
