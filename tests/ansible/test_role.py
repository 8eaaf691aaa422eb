"""The Ansible role: lint, syntax, a real run into a temporary root, idempotence, refusals.

Service and system steps (user creation, systemctl, udevadm) are guarded by
``headframe_manage_service`` / ``headframe_manage_system`` and switched off here (this
machine has no running systemd); the files, owners, modes and unit content are real.
The venv gets this checkout's dependencies through a .pth file so pip installs only the
wheel (``--no-deps``): the wheel itself is built from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ANSIBLE, env=env, timeout=600, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    return next(out.glob("headframe-*.whl"))


def prepare_root(tmp: Path) -> Path:
    root = tmp / "root"
    venv = root / "opt" / "headframe" / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    (purelib / "headframe-test-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    return root


def inventory(tmp: Path, **overrides: object) -> Path:
    hostvars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "headframe_site_id": "mine-t",
        "headframe_gateway_id": "gw-t1",
        "headframe_broker_host": "127.0.0.1",
        "headframe_broker_port": 1883,
        **overrides,
    }
    inv = tmp / "hosts.json"
    inv.write_text(json.dumps({"all": {"children": {"gateways": {"hosts": {"localhost": hostvars}}}}}))
    return inv


def play(inv: Path, root: Path, wheel: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    evars = {
        "headframe_root": str(root),
        "headframe_user": user,
        "headframe_group": user,
        "headframe_manage_service": False,
        "headframe_manage_system": False,
        "headframe_wheel": str(wheel),
        "headframe_pip_extra_args": "--no-deps --no-index",
    }
    return run([str(BIN / "ansible-playbook"), "-i", str(inv), "site.yml", "-e", json.dumps(evars), *extra])


def test_lint_production_profile_and_syntax() -> None:
    lint = run([str(BIN / "ansible-lint"), "--profile", "production", "site.yml", "roles/"])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    syntax = run([str(BIN / "ansible-playbook"), "--syntax-check", "site.yml"])
    assert syntax.returncode == 0, syntax.stderr


def test_real_run_into_a_temporary_root_is_idempotent(tmp_path: Path, wheel: Path) -> None:
    root = prepare_root(tmp_path)
    inv = inventory(tmp_path)
    first = play(inv, root, wheel)
    assert first.returncode == 0, first.stdout[-3000:]
    unit = (root / "etc/systemd/system/headframe.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={root}/var/lib/headframe",
        "ProtectHome=yes",
        "PrivateTmp=yes",
    ):
        assert line in unit, line
    # systemd's service result reaches the next start's previous_run (watchdog vs crash)
    assert "headframe mark-stopped -c " in unit and "--result=${SERVICE_RESULT}" in unit, unit
    cfg = root / "etc/headframe/headframe.yaml"
    assert oct(cfg.stat().st_mode & 0o777) == "0o640"
    assert oct((root / "var/lib/headframe").stat().st_mode & 0o777) == "0o750"
    key = root / "var/lib/headframe/chain.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    key_text = key.read_text()
    assert len(bytes.fromhex(key_text.strip())) == 32
    assert key.read_text().strip() not in first.stdout
    assert f"chain_key_file: {key}" in cfg.read_text()
    check = subprocess.run([str(root / "opt/headframe/venv/bin/headframe"), "check", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0 and "gw-t1" in check.stdout
    assert "MaxUse=200M" in (root / "etc/systemd/journald.conf.d/headframe.conf").read_text().replace("System", "")
    second = play(inv, root, wheel)
    assert second.returncode == 0
    assert key.read_text() == key_text, "the key is never replaced"
    recap = [ln for ln in second.stdout.splitlines() if ln.startswith("localhost")][-1]
    assert "changed=0" in recap, recap
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(root / "etc/systemd/system/headframe.service")],
            capture_output=True,
            text=True,
        )
        problems = [ln for ln in verify.stderr.splitlines() if "headframe.service" in ln and "Failed" in ln]
        assert not problems, verify.stderr


def test_missing_inventory_variable_fails_before_touching_the_target(tmp_path: Path, wheel: Path) -> None:
    root = tmp_path / "root"
    inv = inventory(tmp_path)
    data = json.loads(inv.read_text())
    del data["all"]["children"]["gateways"]["hosts"]["localhost"]["headframe_broker_host"]
    inv.write_text(json.dumps(data))
    res = play(inv, root, wheel)
    assert res.returncode != 0
    assert "Missing inventory variable" in res.stdout and "headframe_broker_host" in res.stdout
    assert not (root / "etc").exists()


def test_a_bad_config_never_replaces_the_running_one(tmp_path: Path, wheel: Path) -> None:
    root = prepare_root(tmp_path)
    assert play(inventory(tmp_path), root, wheel).returncode == 0
    good = (root / "etc/headframe/headframe.yaml").read_text()
    bad_inv = inventory(
        tmp_path, headframe_devices=[{"id": "m", "protocol": "modbus_tcp", "host": "10.0.0.1", "profile": "no_such_meter"}]
    )
    res = play(bad_inv, root, wheel)
    assert res.returncode != 0 and "no_such_meter" in res.stdout
    assert (root / "etc/headframe/headframe.yaml").read_text() == good
