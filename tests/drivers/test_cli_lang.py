"""The technician CLI speaks Chinese or English: ``--lang``, else HEADFRAME_LANG, else the locale.

Run as the technician does (a subprocess), on a broken config, an unreachable device, a missing
serial port and a silent RS-485 line; the key path stays as written in both languages. The
catalogues are checked for both languages and identical placeholders, and every hint the
drivers can raise is checked to be in the catalogue (else it would silently stay English).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.web.i18n import MESSAGES
from config import ConfigError, load_settings_text
from config.lang import Localizer, pick, placeholders
from config.messages import FRAME, PHRASES, localize, problem_text
from drivers import dlt645, dlt645_driver, modbus_rtu, modbus_tcp
from drivers.bus import port_error_text
from drivers.errors import BAD_FRAME
from drivers.messages import CLI, REASONS, reason_text
from tests.drivers.conftest import open_pty_pair
from tests.support.agentproc import REPO
from tests.support.broker import free_port

BROKEN = """\
gateway: {site: s, id: g}
uplink: {host: 127.0.0.1, port: 70000}
buses:
  - {name: rs485, port: /dev/null}
devices:
  - id: m1
    protocol: modbus_rtu
    bus: rs485
    unit: 0
    profile: eastron_sdm630
  - {id: m2, protocol: modbus_tcp, host: h, points: [{name: x, adress: 3}], retries: lots}
"""


def headframe(*argv: str, lang_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "HEADFRAME_LANG")}
    env.update(lang_env)
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *argv], capture_output=True, text=True, cwd=REPO, env=env, timeout=60, check=False
    )


ZH = {"LANG": "zh_CN.UTF-8"}


def at_once(*runs: tuple[tuple[str, ...], dict[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """Several independent CLI runs side by side (each one waits ~2 s on imports)."""
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda run: headframe(*run[0], lang_env=run[1]), runs))


def test_check_speaks_the_locales_language_and_names_the_key_in_both(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    ok = tmp_path / "ok.yaml"
    ok.write_text("gateway: {site: s, id: g}\n")
    zh, en, by_env, fine = at_once(
        (("check", str(config)), ZH),
        (("check", str(config), "--lang", "en"), ZH),  # the flag after the command, too
        (("check", str(config)), {"HEADFRAME_LANG": "zh", "LANG": "C.UTF-8"}),
        (("check", str(ok)), ZH),
    )
    assert zh.returncode == 1
    lines = zh.stderr.splitlines()
    assert f"{config}:2:27: uplink.port: 发现 70000；应为 小于或等于 65535 的值" in lines, zh.stderr
    assert any("devices[0].unit: 发现 0；" in line and "0 是广播地址" in line for line in lines), zh.stderr
    assert any("devices[1].points[0].adress: 发现 未知的键 'adress'；应为 只用文档中列出的键" in line for line in lines)
    assert any("devices[1].retries: 发现 'lots'；应为 整数" in line for line in lines)
    assert lines[-1] == f"{config}: 共 4 处问题；未启动任何东西"

    assert en.returncode == 1 and "发现" not in en.stderr
    assert f"{config}:2:27: uplink.port: found 70000; expected Input should be less than or equal to 65535" in en.stderr
    assert "devices[0].unit: found 0; expected a unit id 1..247" in en.stderr and "devices[1].retries: found 'lots'" in en.stderr
    assert en.stderr.splitlines()[-1] == f"{config}: 4 problem(s); nothing was started"

    assert "共 4 处问题" in by_env.stderr
    assert fine.returncode == 0 and fine.stdout.startswith(f"{ok}: 通过（网关 s/g，0 台设备"), fine.stdout


def test_probe_and_scan_say_why_in_the_technicians_language(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    missing = str(tmp_path / "ttyUSB9")
    pair = open_pty_pair()  # an RS-485 line with nobody on it
    try:
        tcp = ("probe", "modbus-tcp", f"127.0.0.1:{port}", "--read", "0", "--timeout", "0.5")
        scan = ("scan", "modbus-rtu", pair.a, "--units", "1-2", "--bauds", "9600", "--parities", "N", "--timeout", "0.05")
        zh, en, rtu, scan_zh = at_once(
            (tcp, ZH), (("--lang=en", *tcp), ZH), (("probe", "modbus-rtu", missing, "--read", "0"), ZH), (scan, ZH)
        )
        assert zh.returncode == 2 and zh.stderr.strip() == f"错误：无法连接 127.0.0.1:{port}（被拒绝或不可达）", zh.stderr
        assert en.returncode == 2 and en.stderr.strip() == f"error: cannot connect to 127.0.0.1:{port} (refused or unreachable)"
        assert rtu.returncode == 2 and f"错误：串口 {missing} 不存在：检查 USB 转换器/线缆" in rtu.stderr, rtu.stderr
        assert scan_zh.returncode == 1 and "没有从站应答：检查接线（A/B 是否接反）" in scan_zh.stdout, (
            scan_zh.stdout + scan_zh.stderr
        )
        assert "9600 8N1 从站" in scan_zh.stderr
        scan_en = headframe(*scan, "--lang", "en", lang_env=ZH)
        assert scan_en.returncode == 1 and "no unit answered: check wiring (A/B swapped?)" in scan_en.stdout
    finally:
        pair.proc.terminate()
        pair.proc.wait(5)


CATALOGUES = {"web": MESSAGES, "frame": FRAME, "loader": PHRASES, "reasons": REASONS, "cli": CLI}


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_message_has_both_languages_with_the_same_placeholders(name: str) -> None:
    for key, by_lang in CATALOGUES[name].items():
        assert set(by_lang) == {"zh", "en"} and all(by_lang.values()), f"{name}:{key}"
        assert placeholders(by_lang["zh"]) == placeholders(by_lang["en"]), f"{name}:{key}"


def test_every_hint_the_drivers_raise_is_catalogued() -> None:
    hints = [
        modbus_tcp.NO_ANSWER,
        modbus_rtu.NO_ANSWER,
        dlt645_driver.NO_ANSWER,
        BAD_FRAME,
        *(modbus_rtu.exception_text(code) for code in modbus_rtu.EXCEPTIONS),
        *(dlt645.error_text(bit) for bit in dlt645.ERROR_BITS),
        *(
            port_error_text("/dev/ttyUSB0", OSError(code, os.strerror(code)))
            for code in (errno.ENOENT, errno.EACCES, errno.EBUSY, errno.EIO)
        ),
    ]
    for hint in hints:
        zh = reason_text(hint, "zh")
        assert zh != hint and any("\u4e00" <= c <= "\u9fff" for c in zh), hint
        assert reason_text(hint, "en") == hint


LOADER_CASES = [
    # (config, a phrase of the English explanation) — the explanation must come out Chinese
    ("gateway: {site: s, id: g}\nuplink: {host: broker.example}\n", "must not cross a network"),
    ("gateway: {site: s, id: g}\nuplink: {host: 127.0.0.1, reconnect_min: 10s, reconnect_max: 1s}\n", "reconnect_max"),
    ("gateway: {site: s, id: g}\nweb: {enabled: true}\n", "password_file"),
    (
        "gateway: {site: s, id: g}\nbuses: [{name: a, port: /dev/x}, {name: b, port: /dev/x, baudrate: 2400}]\n",
        "already used by bus",
    ),
    (
        "gateway: {site: s, id: g}\ndevices: [{id: d, protocol: modbus_tcp, host: h, points: [{name: p, type: bit}]}]\n",
        "'bit: 0..15'",
    ),
    ("gateway: {site: s, id: g}\ndevices: [{id: d, protocol: modbus_tcp, host: h, profile: nope}]\n", "one of ["),
    ("gateway: {site: s, id: g}\nhealth: {interval: soon}\n", "a duration such as"),
]


@pytest.mark.parametrize(("text", "phrase"), LOADER_CASES)
def test_common_loader_problems_are_explained_in_chinese(text: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings_text(text, "c.yaml")
    problems = [p for p in caught.value.problems if phrase in str(p)]
    assert problems, [str(p) for p in caught.value.problems]
    for p in problems:
        zh = problem_text(p, "zh")
        explanation = zh.split("；应为 ", 1)[1]
        assert f": {p.key or '（顶层）'}: 发现 " in zh and explanation != p.expected, zh
        assert any("\u4e00" <= c <= "\u9fff" for c in explanation), zh


def test_loader_phrases_translate_and_unknown_text_is_kept() -> None:
    assert localize("one of the buses: ['rs485']", "zh") == "已定义的总线之一：['rs485']"
    assert localize("Input should be 'zh' or 'en'", "zh") == "以下之一：'zh' or 'en'"
    assert localize("Input should be greater than or equal to 1", "zh") == "大于或等于 1 的值"  # the specific one wins
    assert localize("something nobody catalogued", "zh") == "something nobody catalogued"
    nested = Localizer(REASONS)
    assert nested("cannot connect to h:502 (timeout)", "zh") == "无法连接 h:502（超时）"


def test_language_choice_order() -> None:
    assert pick("en", {"HEADFRAME_LANG": "zh", "LANG": "zh_CN.UTF-8"}) == "en"
    assert pick(None, {"HEADFRAME_LANG": "zh", "LANG": "C"}) == "zh"
    assert pick(None, {"LANG": "zh_TW.UTF-8"}) == "zh"
    assert pick(None, {"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"  # LC_ALL overrides LANG
    assert pick(None, {}) == "en"
