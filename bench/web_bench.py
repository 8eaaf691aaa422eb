"""What the technician's page costs the agent: CPU and RSS with the page off, on and idle, and on
with a real headless Chromium logged in and refreshing (the page polls every 2 s).

    .venv/bin/python -m bench.web_bench [--seconds 30] [--devices 10]

The same agent (10 Modbus TCP devices × 20 changing registers at 1 Hz, a real mosquitto) is
started three times in one run; CPU is the agent process's own CPU time over the window
(user + system, so other load on the machine inflates it less than wall-clock figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.support.agentproc import REPO, AgentProcess, write_config
from tests.support.broker import MosquittoBroker, free_port

PASSWORD = "bench password 123"


def _devices(n: int) -> tuple[list[ServerThread], list[RegisterImage], list[dict[str, object]]]:
    servers, images, devices = [], [], []
    for i in range(n):
        image, port = RegisterImage(size=100), free_port()
        servers.append(ServerThread({1: image}, tcp_port=port).start())
        images.append(image)
        devices.append(
            {
                "id": f"plc-{i}",
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": port,
                "groups": [{"name": "default", "interval": "1s"}],
                "points": [{"name": f"r{k}", "address": k, "type": "uint16"} for k in range(20)],
            }
        )
    return servers, images, devices


def _measure(agent: AgentProcess, seconds: float) -> tuple[float, float]:
    proc = psutil.Process(agent.proc.pid)
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    cpu = (t1.user - t0.user + t1.system - t0.system) / seconds * 100
    return cpu, proc.memory_info().rss / 2**20


def _wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _browser(url: str, profile: Path) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.get(url + "/login")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    return driver


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--devices", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hf-webbench-"))
    broker = MosquittoBroker(work / "broker").start()
    servers, images, devices = _devices(args.devices)
    stop = threading.Event()

    def change() -> None:  # every register changes every second: the agent reports every value
        n = 0
        while not stop.is_set():
            n += 1
            for image in images:
                image.set_registers("holding", 0, [(n + k) % 65536 for k in range(20)])
            stop.wait(1.0)

    threading.Thread(target=change, daemon=True).start()
    pw = work / "web.password"
    subprocess.run(
        [sys.executable, "-m", "agent.cli", "web-password", "--stdin", str(pw)],
        input=PASSWORD + "\n",
        text=True,
        cwd=REPO,
        check=True,
    )
    rows = []
    try:
        for label in ("page off", "page on, nobody looking", "page on, Chromium logged in"):
            port = free_port()
            web = {"enabled": label != "page off", "port": port, "password_file": str(pw)}
            cfg = write_config(
                work / f"{port}.yaml", broker.port, buffer_path=work / f"{port}.db", extra={"devices": devices, "web": web}
            )
            agent = AgentProcess(cfg)
            driver = None
            try:
                time.sleep(5)  # start-up is not what is measured
                if web["enabled"]:
                    _wait_up(f"http://127.0.0.1:{port}/login")
                if label.endswith("logged in"):
                    driver = _browser(f"http://127.0.0.1:{port}", work / "profile")
                    time.sleep(3)
                cpu, rss = _measure(agent, args.seconds)
                rows.append((label, cpu, rss))
                print(f"{label:<32} CPU {cpu:5.1f} % of one core   RSS {rss:6.1f} MB", flush=True)
            finally:
                if driver is not None:
                    driver.quit()  # type: ignore[attr-defined]
                agent.terminate()
    finally:
        stop.set()
        for s in servers:
            s.stop()
        broker.stop()
    base_cpu, base_rss = rows[0][1], rows[0][2]
    print(json.dumps({r[0]: {"cpu_pct": round(r[1], 2), "rss_mb": round(r[2], 1)} for r in rows}))
    for label, cpu, rss in rows[1:]:
        print(f"{label}: +{cpu - base_cpu:.1f} points of CPU, +{rss - base_rss:.1f} MB RSS against the page off (same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
