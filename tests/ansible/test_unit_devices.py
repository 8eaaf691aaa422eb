"""The systemd unit lets the agent open every device class the drivers and cameras support,
and nothing else: DeviceAllow by /proc/devices group, with the modules that provide the groups
loaded before the unit starts (a group unknown at start is silently dropped by systemd).
The template is rendered with Jinja as Ansible does and checked by ``systemd-analyze verify``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "ansible/roles/headframe/templates/headframe.service.j2"

#: /proc/devices group -> what needs it. Serial: drivers/bus.py opens any tty with pyserial;
#: cameras: vision/source.py opens /dev/videoN through OpenCV's V4L2 backend.
REQUIRED = {
    "char-ttyS": "on-board 8250/16550 UARTs, the Raspberry Pi mini-UART, PCIe/ISA RS-485 cards",
    "char-ttyUSB": "USB RS-485 adapters (FTDI, CH340, CP210x, PL2303)",
    "char-ttyACM": "USB CDC-ACM serial devices (meters and PLCs with a USB port)",
    "char-ttyAMA": "Raspberry Pi PL011 UARTs",
    "char-ttySC": "SC16IS7xx RS-485 HATs",
    "char-ttymxc": "NXP i.MX UARTs (industrial gateways)",
    "char-video4linux": "USB and CSI cameras",
}
#: modules whose groups may be missing from /proc/devices at boot (the rest are built in)
MODULES = {"usbserial", "cdc_acm", "videodev", "sc16is7xx"}


def render(venv: Path) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(TEMPLATE.read_text()).render(
        headframe_venv=str(venv),
        headframe_config_dir="/etc/headframe",
        headframe_data_dir="/var/lib/headframe",
        headframe_user="headframe",
        headframe_group="headframe",
        headframe_watchdog_sec=30,
    )


def directives(unit: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; systemd allows a key many times, configparser does not."""
    out, section = [], ""
    for raw in unit.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def group_of(path: str) -> str:
    """The /proc/devices group a kernel device name belongs to (``/dev/ttyAMA0`` -> ``char-ttyAMA``)."""
    name = re.sub(r"\d+$", "", path.removeprefix("/dev/"))
    return "char-video4linux" if name == "video" else f"char-{name}"


def test_every_driver_device_class_is_allowed_and_nothing_more(tmp_path: Path) -> None:
    unit = directives(render(tmp_path / "venv"))
    allowed = {v.split()[0]: v.split()[1] for s, k, v in unit if s == "Service" and k == "DeviceAllow"}
    missing = {g: why for g, why in REQUIRED.items() if allowed.get(g) != "rw"}
    assert not missing, f"DeviceAllow misses (read-write): {missing}"
    assert set(allowed) == set(REQUIRED), f"allowed beyond what the drivers open: {set(allowed) - set(REQUIRED)}"
    policy = [v for s, k, v in unit if k == "DevicePolicy"]
    assert policy == ["closed"], "closed: only the listed groups plus /dev/null, zero, full, random, urandom"
    for key in ("Wants", "After"):
        units = {u for s, k, v in unit if s == "Unit" and k == key for u in v.split()}
        assert {f"modprobe@{m}.service" for m in MODULES} <= units, f"{key}= lacks a modprobe@ for {MODULES}"
    groups = {v for s, k, v in unit if s == "Service" and k == "SupplementaryGroups"}
    assert groups == {"dialout video"}, "Debian's udev gives tty ports to dialout and cameras to video"


@pytest.mark.parametrize(
    "path", ["/dev/ttyS0", "/dev/ttyUSB0", "/dev/ttyACM0", "/dev/ttyAMA0", "/dev/ttySC1", "/dev/ttymxc2", "/dev/video0"]
)
def test_device_names_map_to_an_allowed_group(path: str) -> None:
    assert group_of(path) in REQUIRED


def test_every_device_named_in_docs_and_examples_is_allowed() -> None:
    """A port named in the docs, example configs or code must be openable under the unit."""
    named: set[str] = set()
    for pattern in ("docs/*.md", "config/examples/*.yaml", "README.md", "drivers/*.py", "vision/*.py", "hil/*.py"):
        for f in REPO.glob(pattern):
            named |= set(re.findall(r"/dev/(?:tty[A-Za-z]+|video)\d+", f.read_text(errors="replace")))
    assert named, "expected device names in the docs"
    assert {p for p in named if group_of(p) not in REQUIRED} == set()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "headframe"  # stands in for the installed entry point: verify checks it exists
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "headframe.service"
    unit.write_text(render(venv))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in res.stderr.splitlines() if "headframe.service" in ln]
    assert not problems, res.stderr
