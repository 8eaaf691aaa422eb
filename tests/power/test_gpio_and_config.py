"""The power-good input (a NAMED FAKE pin: a plain file, since no GPIO exists here) and the config."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent.power.gpio import GpioSource
from agent.power.monitor import PowerMonitor
from agent.power.runstate import RunState
from config import ConfigError, load_settings_text
from config.power import GpioSettings, PowerSettings
from tests.power.test_nut import Recorder, _watch


def _gpio_monitor(pin: Path, tmp_path: Path, **settings: object) -> tuple[PowerMonitor, Recorder, RunState]:
    cfg = PowerSettings(
        source="gpio",
        gpio=GpioSettings(path=pin, **settings.pop("gpio", {})),
        poll=0.1,
        retry_min=0.05,
        retry_max=0.2,
        **settings,
    )
    rec = Recorder()
    run = RunState(tmp_path, {"clean": False})
    return PowerMonitor(cfg, GpioSource(cfg.gpio), rec.commit, rec.stop, run), rec, run


def test_fake_pin_mains_lost_and_back(tmp_path: Path) -> None:
    fake_pin = tmp_path / "FAKE-gpio17-value"
    fake_pin.write_text("1\n")
    monitor, rec, run = _gpio_monitor(fake_pin, tmp_path)

    async def scenario() -> None:
        await _watch(monitor, lambda: monitor.state == "mains", 5)
        fake_pin.write_text("0\n")
        await _watch(monitor, lambda: monitor.state == "on_battery", 5)
        assert run.doc["power"]["state"] == "on_battery"
        fake_pin.write_text("1\n")
        await _watch(monitor, lambda: monitor.state == "mains", 5)

    asyncio.run(scenario())
    assert [(r.payload["alarm"], r.payload["state"], r.payload["input"], d) for r, d in rec.committed] == [
        ("mains_lost", "raised", str(fake_pin), "power_loss"),
        ("mains_lost", "cleared", str(fake_pin), "power_loss"),
    ]
    assert rec.stops == []


def test_active_low_pin_and_stop_after_a_long_outage(tmp_path: Path) -> None:
    fake_pin = tmp_path / "FAKE-power-good"
    fake_pin.write_text("1\n")  # active low: 1 means mains is gone
    monitor, rec, run = _gpio_monitor(fake_pin, tmp_path, gpio={"active": 0}, stop_after=0.5)
    began = time.monotonic()
    asyncio.run(_watch(monitor, lambda: rec.stops, 5))
    assert time.monotonic() - began >= 0.5
    kinds = [r.payload.get("alarm") or r.payload.get("event") for r, _ in rec.committed]
    assert kinds == ["mains_lost", "power_failing"]
    assert rec.stops == ["mains_failure"]
    assert run.doc["power"]["state"] == "low_battery" and run.doc["stopping_reason"] == "mains_failure"


@pytest.mark.parametrize("content, expected", [("2\n", "holds '2'; expected 0 or 1"), (None, "cannot read the power-good")])
def test_unreadable_pin_is_a_health_error(tmp_path: Path, content: str | None, expected: str) -> None:
    fake_pin = tmp_path / "FAKE-pin"
    if content is not None:
        fake_pin.write_text(content)
    monitor, rec, _ = _gpio_monitor(fake_pin, tmp_path)
    asyncio.run(_watch(monitor, lambda: monitor.last_error, 5))
    assert expected in monitor.health()["last_error"]
    assert monitor.health()["state"] == "unknown" and rec.committed == []


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings_text(text, "gw.yaml")
    return [str(p) for p in err.value.problems]


def test_power_config_errors_name_file_line_and_fix(tmp_path: Path) -> None:
    base = "gateway: {site: s, id: g}\npower:\n"
    assert _problems(base + "  source: gpio\n") == [
        "gw.yaml:2:1: power: found {'source': 'gpio'}; expected a 'gpio:' section with 'path' when source is gpio"
    ]
    (problem,) = _problems(base + "  source: nut\n  nut:\n    port: 3493\n    pasword_file: x\n")
    assert problem.startswith("gw.yaml:6:5: power.nut.pasword_file: found unknown key")
    (problem,) = _problems(base + "  source: ups\n")
    assert problem.startswith("gw.yaml:3:3: power.source:") and "'none', 'nut' or 'gpio'" in problem
    (problem,) = _problems(base + f"  source: nut\n  nut:\n    username: mon\n    password_file: {tmp_path}/none\n")
    assert problem.startswith("gw.yaml:6:5: power.nut.password_file:") and "a readable file" in problem
    ok = load_settings_text(base + "  source: nut\n  nut: {ups: myups}\n  poll: 5s\n", "gw.yaml")
    assert ok.power.nut_or_default.ups == "myups" and ok.power.poll == 5.0
    assert load_settings_text("gateway: {site: s, id: g}\n", "gw.yaml").power.source == "none"
