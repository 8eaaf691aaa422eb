"""Runs scenarios against the simulated site (or real devices) and reports pass/fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from config import ConfigError
from config.loader import load_settings
from hil import delivery, expect, overlay
from hil.delivery import buffer_state
from hil.expect import matches
from hil.lifetime import spawn
from hil.proxy import FaultProxy
from hil.scenario import Scenario
from hil.site import Site, free_port

REPO = Path(__file__).resolve().parents[1]
#: ``matches`` lives in hil/expect.py (with the operators); kept importable from here
__all__ = ["Agent", "Recorder", "ScenarioRun", "matches"]


def fill(path: Path, leave: int) -> None:
    """Write zeros to ``path`` until its filesystem has only ``leave`` bytes free (a real full disk)."""
    chunk = b"\0" * (1 << 16)
    with open(path, "ab") as fh:
        while True:
            st = os.statvfs(path)
            room = st.f_bavail * st.f_frsize - leave
            if room <= 0:
                return
            try:
                fh.write(chunk[: min(len(chunk), room)])
                fh.flush()
            except OSError:  # ENOSPC: as full as it gets
                return


class Recorder:
    """Subscribes to the real broker (not through the proxy) and keeps every record message."""

    def __init__(self, port: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hil-recorder", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("headframe/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/status"):
            return
        try:
            doc = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        with self.lock:
            self.messages.append(doc)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Agent:
    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0

    def start(self, clock: str = "kernel", reboot: bool = False) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if clock != "kernel":
            env["HEADFRAME_CLOCK_OVERRIDE"] = clock
        if reboot:  # TEST HOOK: a new boot id, as after a real power-off; it stays for later starts
            self.boots += 1
        if self.boots:
            env["HEADFRAME_FAKE_BOOT_ID"] = f"hil-simulated-boot-{self.boots}"
        with open(self.log, "ab") as fh:
            self.proc = spawn(  # dies with the rig, also when the rig is SIGKILLed
                [sys.executable, "-m", "agent.cli", "run", "-c", str(self.config)],
                cwd=REPO,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode

    def wait_exit(self, timeout: float) -> int | None:
        """Its exit status once it exits by itself, or None if it still runs after ``timeout``."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ScenarioRun:
    def __init__(self, scenario: Scenario, workdir: Path, scale: float = 1.0) -> None:
        self.sc, self.workdir, self.scale = scenario, workdir, scale
        self.checks: list[dict[str, Any]] = []
        #: every record message the recorder received (kept for a look after the run)
        self.messages: list[dict[str, Any]] = []
        #: wall time (epoch s) at which each step (1-based) started: the windows of after_step/before_step
        self.step_times: dict[int, float] = {}
        self._mount: Path | None = None
        self._site: Site | None = None
        self.recorder: Recorder | None = None
        self.command_topic = ""

    def run(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        site = Site(self.workdir / "site", with_ups=self.sc.ups)
        site.model.mode = self.sc.site_mode
        site.start()
        self._site = site
        proxy = FaultProxy(free_port(), site.broker_port).start()
        recorder = self.recorder = Recorder(site.broker_port)
        buf_dir = self.workdir
        if self.sc.buffer_tmpfs:
            buf_dir = self._tmpfs(self.sc.buffer_tmpfs)
        db = buf_dir / "buffer.db"
        cfg = site.config(self.workdir / "headframe.yaml", db, declared=self.sc.declared)
        doc = json.loads(cfg.read_text())
        doc["uplink"]["port"] = proxy.listen_port
        if self.sc.max_bytes:
            doc["buffer"]["max_bytes"] = self.sc.max_bytes
        # its own control socket: concurrent runs (and a real agent) each keep theirs
        ctl = self.workdir / "control.sock"
        doc["control"] = {"socket": str(ctl)} if len(str(ctl)) < 100 else {"enabled": False}
        # ``cameras:`` picks which of the site's cameras the agent gets; ``config:`` then changes
        # that config (so its ``cameras.N`` paths index the cameras that are left)
        if self.sc.cameras is not True:
            keep = {f"cam-{name}" for name in (self.sc.cameras or [])}
            doc["cameras"] = [c for c in doc["cameras"] if c["id"] in keep]
            if "cam-seal" not in keep:
                for section in doc.get("rules", {}).get("site", {}).get("sections", []):
                    section.get("activity", {}).pop("seal_cameras", None)
        error = self._configure(doc, site)
        self.command_topic = f"headframe/{doc['gateway']['site']}/{doc['gateway']['id']}/command"
        cfg.write_text(json.dumps(doc, indent=2))
        if error is None:
            try:
                load_settings(cfg)  # a scenario's config change the agent would refuse fails here, named
            except ConfigError as exc:
                error = f"config: {exc}"
        agent = Agent(cfg, self.workdir / "agent.log")
        if error is None:
            agent.start(self.sc.clock)
        # a stop signal (hil.lifetime.StopSignal, not an Exception) during a step skips the
        # checks but not the cleanup: agent, site and tmpfs are stopped/unmounted either way
        try:
            try:
                for i, step in enumerate(self.sc.steps if error is None else []):
                    self.step_times[i + 1] = time.time()
                    self._step(step, site, proxy, agent, db)
                    took = round(time.time() - self.step_times[i + 1], 1)
                    self.checks.append({"step": i + 1, "action": step.action, "ok": True, "seconds": took})
            except Exception as exc:  # a failing step is a failed scenario, with the reason
                error = f"step {len(self.checks) + 1}: {exc}"
            result = self._expect(recorder, agent, db, error)
        finally:
            agent.stop()
            recorder.stop()
            proxy.stop()
            site.stop()
            self._umount()
        result.update(
            {
                "scenario": self.sc.name,
                "seconds": round(time.monotonic() - started, 1),
                "facts": self.facts(),
                "steps": self.checks,
            }
        )
        (self.workdir / "messages.json").write_bytes(orjson.dumps(self.messages))
        return result

    def _configure(self, doc: dict[str, Any], site: Site) -> str | None:
        """The scenario's ``config:`` changes (hil/overlay.py); an error message, or None."""
        if not self.sc.config:
            return None
        tz = str(doc.get("rules", {}).get("site", {}).get("timezone", "Asia/Shanghai"))
        try:
            overlay.apply(doc, overlay.expand(self.sc.config, site.cameras.url, tz))
        except overlay.OverlayError as exc:
            return str(exc)
        return None

    def facts(self) -> dict[str, Any]:
        """What the simulated site injected, for expectations to compare counts with (``$name``)."""
        site = self._site
        if site is None or not hasattr(site, "dlt"):
            return {}
        return {
            "dlt_requests": site.dlt.requests,
            "dlt_corrupted": site.dlt.corrupted,
            "dlt_noise_bytes": site.dlt.noise_bytes,
        }

    def _tmpfs(self, size: int) -> Path:
        mnt = self.workdir / "tmpfs"
        mnt.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
        self._mount = mnt
        return mnt

    def _umount(self) -> None:
        if self._mount:
            subprocess.run(["umount", "-l", str(self._mount)], check=False)

    def _step(self, step: Any, site: Site, proxy: FaultProxy, agent: Agent, db: Path) -> None:
        a = step.action
        if a == "wait":
            time.sleep(step.seconds * self.scale)
        elif a == "proxy":
            proxy.set_mode(step.mode, delay_s=step.delay_s, flap_s=step.flap_s)
        elif a == "camera":
            if step.clip is not None:
                site.cameras.show(step.name, step.clip)
            if step.mode is not None:
                site.cameras.modes[step.name] = step.mode
        elif a == "publish":
            self._publish(step)
        elif a == "device":
            if step.name == "plc":
                site.plc.set_alive(step.state == "alive")
            else:
                site.dlt.silent = step.state == "dead"
        elif a == "serial_noise":
            site.dlt.noise = step.enabled
        elif a == "kill_agent":
            agent.kill()
        elif a == "start_agent":
            agent.stop()
            agent.start(step.clock, step.reboot)
        elif a == "site_mode":
            if step.cycle_from_start:
                site.model.t0 = time.monotonic()
            site.model.mode = step.mode
        elif a == "ups":
            assert site.ups is not None  # the scenario validator asks for ups: true
            site.ups.set_status(step.status, charge=step.charge, runtime=step.runtime)
            site.ups.wait_status(step.status, step.timeout)
        elif a == "wait_agent_exit":
            code = agent.wait_exit(step.timeout)
            if code is None:
                raise TimeoutError(f"the agent did not exit by itself within {step.timeout:g}s")
            if step.code is not None and code != step.code:
                raise RuntimeError(f"the agent exited with status {code}, expected {step.code}")
        elif a == "wait_for":
            self._wait_for(step.record, step.timeout, step.count)
        elif a == "fill_disk":
            assert self._mount is not None  # the scenario validator asks for buffer_tmpfs
            fill(self._mount / "filler", step.leave)
        elif a == "free_disk":
            assert self._mount is not None
            (self._mount / "filler").unlink(missing_ok=True)
        elif a == "wait_drained":
            deadline = time.monotonic() + step.timeout
            while time.monotonic() < deadline:
                last, pending = buffer_state(db)
                if last and len(pending) <= 2:
                    return
                time.sleep(0.5)
            raise TimeoutError(f"buffer not drained within {step.timeout}s ({len(buffer_state(db)[1])} left)")

    def _publish(self, step: Any) -> None:
        assert self.recorder is not None
        topic = step.topic.replace("${command_topic}", self.command_topic)
        body = step.raw.encode() if step.raw is not None else json.dumps(step.payload).encode()
        info = self.recorder.client.publish(topic, body, qos=step.qos, retain=step.retain)
        info.wait_for_publish(5)
        if not info.is_published():
            raise TimeoutError(f"publish on {topic} not acknowledged by the broker within 5 s")

    def _wait_for(self, want: dict[str, Any], timeout: float, count: int = 1) -> None:
        """Until ``count`` distinct records (and at least the expectation's own ``min``/``count``)
        meet ``want`` inside its window; ``timeout`` is stretched by a scale above 1 only."""
        assert self.recorder is not None
        need = max(expect.bounds(want)[0], count)
        deadline = time.monotonic() + timeout * max(self.scale, 1.0)
        while True:
            found = expect.select(self.recorder.snapshot(), want, self.step_times, self.facts())
            if len(found) >= max(need, 1):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not seen within {timeout:g}s: {want} ({len(found)} of {max(need, 1)} so far)")
            time.sleep(0.2)

    def _expect(self, rec: Recorder, agent: Agent, db: Path, error: str | None) -> dict[str, Any]:
        e = self.sc.expect
        time.sleep(1.0)
        msgs = self.messages = rec.snapshot()
        results: dict[str, Any] = {}
        if error:
            results["steps"] = {"ok": False, "detail": error}
        if e.agent_alive:
            results["agent_alive"] = {"ok": agent.alive(), "detail": "" if agent.alive() else "agent exited"}
        if e.all_delivered or e.chain_intact:
            found = delivery.check(msgs, db)
            if e.all_delivered:
                results["all_delivered"] = found.delivered_result()
            if e.chain_intact:
                results["chain_intact"] = found.chain_result()
        if e.ordered_per_source:
            seen: set[int] = set()
            order: dict[tuple[str, str], list[int]] = {}
            for m in msgs:
                if m["seq"] not in seen:
                    seen.add(m["seq"])
                    order.setdefault((m["source"], m["kind"]), []).append(m["seq"])
            bad = [k for k, v in order.items() if v != sorted(v)]
            results["ordered_per_source"] = {"ok": not bad, "detail": f"out of order: {bad}" if bad else "ok"}
        facts = self.facts()
        for want in e.records:
            results[f"record {want}"] = expect.judge(msgs, want, self.step_times, facts)
        for want in e.absent:
            results[f"absent {want}"] = expect.judge(msgs, want, self.step_times, facts, absent=True)
        for c in e.count:
            n = expect.count(msgs, c.match)
            ok = (c.equals is None or n == c.equals) and (c.min is None or n >= c.min) and (c.max is None or n <= c.max)
            bound = " ".join(f"{k} {v}" for k, v in (("==", c.equals), (">=", c.min), ("<=", c.max)) if v is not None)
            results[f"count {c.match} {bound}"] = {"ok": ok, "detail": f"{n} distinct record(s)"}
        if e.sequence:
            ok, detail = expect.sequence(msgs, e.sequence)
            results["sequence"] = {"ok": ok, "detail": detail}
        return {"passed": all(r["ok"] for r in results.values()), "checks": results, "messages": len(msgs)}
