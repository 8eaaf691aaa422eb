"""A real Network UPS Tools server: ``upsd`` plus the ``dummy-ups`` driver, for the simulated
site (a scenario with ``ups: true``) and the power tests (``tests/support/nut.py`` re-exports it).

Both run as the caller's own processes in a temp dir (NUT_CONFPATH / NUT_STATEPATH), upsd on
a free loopback port. The driver runs in ``dummy-once`` mode (the default for ``*.dev``
files since NUT 2.8.0): it re-reads its state file whenever the file's timestamp changes,
checked every ``pollinterval`` (1 s here), so ``set_status()`` flips what upsd reports.
Debian's /usr/sbin/upsd is a wrapper that refuses to start unless /etc/nut/nut.conf enables
it, so the real binary in /lib/nut is used.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.lifetime import spawn
from hil.net import free_port, wait_port

NUT_BIN = Path(os.environ.get("NUT_BIN", "/lib/nut"))
#: upsd.users entry the agent logs in with (a test secret, not a real one).
MONITOR_USER, MONITOR_PASSWORD = "monitor", "test-secret"


class NutServer:
    """upsd + dummy-ups; ``stop()``/``start()`` keep the port, so a test can kill upsd mid-run."""

    started: list[NutServer] = []  # noqa: RUF012 - every server started, for leak-proof clean-up

    def __init__(self, workdir: Path, *, ups: str = "testups", port: int | None = None) -> None:
        if not (NUT_BIN / "upsd").exists() or not (NUT_BIN / "dummy-ups").exists():
            raise RuntimeError("NUT is not installed: run scripts/setup.sh test (nut-server nut-client)")
        self.workdir, self.ups = workdir, ups
        self.port = port or free_port()
        # upsd's and the driver's unix sockets live here: a socket path is limited to 107 bytes, and
        # a deep work dir (pytest's per-worker tmp paths) would exceed it, so this one is short
        self.statedir = Path(tempfile.mkdtemp(prefix="hf-nut-"))
        atexit.register(shutil.rmtree, self.statedir, True)
        self.dev = workdir / "ups.dev"
        self.driver: subprocess.Popen[bytes] | None = None
        self.upsd: subprocess.Popen[bytes] | None = None
        self._mtime = time.time()
        workdir.mkdir(parents=True, exist_ok=True)
        self.statedir.chmod(0o770)
        (workdir / "ups.conf").write_text(
            f'[{ups}]\n  driver = dummy-ups\n  port = {self.dev}\n  desc = "dummy UPS for tests"\n  pollinterval = 1\n'
        )
        (workdir / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\nSTATEPATH {self.statedir}\n")
        users = workdir / "upsd.users"
        users.write_text(f"[{MONITOR_USER}]\n  password = {MONITOR_PASSWORD}\n  upsmon secondary\n")
        users.chmod(0o600)
        (workdir / "nut.conf").write_text("MODE=standalone\n")
        self.set_status("OL", charge=100, runtime=1800)

    def power_config(self, poll: str = "0.5s") -> dict[str, Any]:
        """The agent's ``power:`` section for this UPS, logging in as the monitor user."""
        secret = self.workdir / "agent-ups-password"
        secret.write_text(MONITOR_PASSWORD + "\n")
        secret.chmod(0o600)
        return {
            "source": "nut",
            "poll": poll,
            "retry_min": "0.2s",
            "retry_max": "1s",
            "nut": {
                "host": "127.0.0.1",
                "port": self.port,
                "ups": self.ups,
                "timeout": "2s",
                "username": MONITOR_USER,
                "password_file": str(secret),
            },
        }

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "NUT_CONFPATH": str(self.workdir), "NUT_STATEPATH": str(self.statedir)}

    def _user_flag(self) -> list[str]:
        # as root both would switch to the 'nut' user, which cannot read a temp dir of root
        return ["-u", "root"] if os.geteuid() == 0 else []

    def start(self) -> NutServer:
        self.start_driver()
        self.start_upsd()
        return self

    def start_driver(self) -> None:
        log = open(self.workdir / "driver.log", "ab")  # noqa: SIM115 - handed to the child
        self.driver = spawn(
            [str(NUT_BIN / "dummy-ups"), "-a", self.ups, "-F", *self._user_flag()],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        sock = self.statedir / f"dummy-ups-{self.ups}"
        deadline = time.monotonic() + 10
        while not sock.exists():
            if self.driver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dummy-ups did not start: {(self.workdir / 'driver.log').read_text()}")
            time.sleep(0.05)
        if self not in NutServer.started:
            NutServer.started.append(self)

    def start_upsd(self) -> None:
        log = open(self.workdir / "upsd.log", "ab")  # noqa: SIM115 - handed to the child
        self.upsd = spawn([str(NUT_BIN / "upsd"), "-F", *self._user_flag()], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_port(self.port, timeout=10)
        except TimeoutError:
            raise RuntimeError(f"upsd did not listen: {(self.workdir / 'upsd.log').read_text()}") from None
        if self not in NutServer.started:
            NutServer.started.append(self)

    def set_status(self, status: str, *, charge: int = 100, runtime: int = 1800) -> None:
        """Rewrite the driver's state file; a fresh timestamp makes dummy-ups (dummy-once) re-read it."""
        tmp = self.dev.with_suffix(".tmp")
        tmp.write_text(f"ups.status: {status}\nbattery.charge: {charge}\nbattery.runtime: {runtime}\n")
        # strictly increasing whole-second mtimes: the driver compares timestamps
        self._mtime = max(self._mtime + 1, time.time())
        os.utime(tmp, (self._mtime, self._mtime))
        tmp.replace(self.dev)

    def query(self, var: str = "ups.status") -> str:
        """What upsd answers now, through NUT's own client (upsc)."""
        upsc = shutil.which("upsc") or "/bin/upsc"
        out = subprocess.run(
            [upsc, f"{self.ups}@127.0.0.1:{self.port}", var], env=self.env, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip()

    def wait_status(self, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.query() != status:
            if time.monotonic() > deadline:
                raise TimeoutError(f"upsd still says {self.query()!r}, not {status!r}")
            time.sleep(0.1)

    @staticmethod
    def _end(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill_upsd(self) -> None:
        self._end(self.upsd, signal.SIGKILL)

    def stop(self) -> None:
        self._end(self.upsd, signal.SIGTERM)
        self._end(self.driver, signal.SIGTERM)
        if self in NutServer.started:
            NutServer.started.remove(self)
