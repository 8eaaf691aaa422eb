"""Cut the power under the real BufferStore at random points and check what survived.

Each round runs ``driver`` under the write-log shim, kills it at a random moment (or lets it
stop cleanly first), rebuilds the disk as a power cut would leave it (``model``), puts that
image in place of the database directory, and checks it: SQLite integrity, every committed
record of ``power_loss`` durability present, nothing committed vanished except what was
acked, seq never reused (also against the reservation file), the chain unbroken. The next
round starts on that image, so recovery after a cut is itself cut.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from buffer import chain
from tests.support.powercut import model
from tests.support.powercut.driver import KEY

REPO = Path(__file__).resolve().parents[3]
SHIM_SRC = Path(__file__).with_name("shim.c")
DB = "buf.db"


def build_shim(out_dir: Path) -> Path:
    """Compile the shim (gcc) once per source version."""
    digest = hashlib.sha256(SHIM_SRC.read_bytes()).hexdigest()[:12]
    lib = out_dir / f"powercut-{digest}.so"
    if not lib.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_suffix(".tmp")
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SHIM_SRC), "-ldl"], check=True)
        tmp.replace(lib)
    return lib


@dataclass
class Figures:
    """What a run of cuts showed; ``problems`` must stay empty."""

    cuts: int = 0
    torn: int = 0
    kills: int = 0  # plain kill -9 rounds (page cache kept), for contrast
    clean_stops: int = 0
    committed: dict[str, int] = field(default_factory=lambda: {"power_loss": 0, "process_crash": 0})
    lost: dict[str, int] = field(default_factory=lambda: {"power_loss": 0, "process_crash": 0})
    cuts_with_loss: int = 0
    max_lost_records: int = 0
    max_lost_window_s: float = 0.0
    max_unsynced_wal_kib: float = 0.0  # WAL bytes written since its last fsync, at the worst cut
    seq_jumps: list[int] = field(default_factory=list)
    integrity_failures: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("problems", "seq_jumps")}
        out["seq_jumps"] = len(self.seq_jumps)
        out["max_seq_jump"] = max(self.seq_jumps, default=0)
        out["problems"] = len(self.problems)
        return out


@dataclass
class Inspection:
    ok: bool
    last_seq: int
    head: str | None
    bodies: dict[int, dict[str, Any]]
    floor: int


def inspect(image: dict[str, bytes], scratch: Path) -> Inspection:
    """Open a copy of the image as the next start would and read what it holds."""
    model.write_dir(scratch, image)
    floor = int((image.get(DB + ".seq") or b"0").strip() or 0)
    if DB not in image:
        return Inspection(True, 0, None, {}, floor)
    db = sqlite3.connect(scratch / DB)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        try:
            row = db.execute("SELECT last_seq, chain_head FROM state").fetchone()
            bodies = {int(s): orjson.loads(b) for s, b in db.execute("SELECT seq, body FROM records")}
        except sqlite3.OperationalError:  # cut before the schema was created
            row, bodies = None, {}
        return Inspection(ok, int(row[0]) if row else 0, str(row[1]) if row else None, bodies, floor)
    finally:
        db.close()


class PowerCuts:
    """Rounds of run → cut → rebuild → check, on one database directory."""

    def __init__(
        self,
        work: Path,
        *,
        seed: int,
        durability: dict[str, str],
        torn_share: float = 1 / 3,
        kill_share: float = 0.15,
        max_duration: float = 2.5,
        boot_ids: bool = True,
        quiet_site: bool = False,
        max_unsynced: float | None = None,
    ) -> None:
        self.work, self.rng = work, random.Random(seed)
        self.dbdir = work / "db"
        self.dbdir.mkdir(parents=True, exist_ok=True)
        self.shim = build_shim(work / "shim")
        self.durability, self.torn_share, self.kill_share = durability, torn_share, kill_share
        self.max_duration, self.boot_ids, self.quiet_site = max_duration, boot_ids, quiet_site
        self.max_unsynced = max_unsynced  # None: the store's default
        self.figures = Figures()
        self.history: dict[int, str] = {}  # seq -> chain, of everything ever reported or seen
        self.stream: dict[int, tuple[str, str]] = {}  # seq -> (chain, prev), the live branch
        self.acked: set[int] = set()
        self.boot = 0
        self.last_seq = 0
        #: more arguments for the driver (``--rules``)
        self.driver_args: list[str] = []

    def problem(self, round_no: int, what: str) -> None:
        self.figures.problems.append(f"round {round_no}: {what}")

    def run(self, cuts: int) -> Figures:
        for round_no in range(cuts):
            self.round(round_no)
        self._check_stream()
        return self.figures

    # ---------------------------------------------------------------- one round
    def _spawn(self, round_no: int, duration: float) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.work / "write.log"
        log.unlink(missing_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "LD_PRELOAD": str(self.shim),
            "POWERCUT_DIR": str(self.dbdir),
            "POWERCUT_LOG": str(log),
        }
        cmd = [
            sys.executable,
            "-m",
            "tests.support.powercut.driver",
            str(self.dbdir / DB),
            "--seed",
            str(self.rng.randrange(1 << 30)),
            "--duration",
            f"{duration:.3f}",
            "--durability",
            json.dumps(self.durability),
        ]
        if self.boot_ids:
            cmd += ["--boot-id", f"sim-boot-{self.boot}"]
        if self.quiet_site:
            cmd.append("--quiet-site")
        if self.max_unsynced is not None:
            cmd += ["--max-unsynced", str(self.max_unsynced)]
        cmd += self.driver_args
        err = open(self.work / "driver.err", "wb")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, cwd=REPO)
        err.close()
        return proc, log

    def round(self, round_no: int) -> None:
        base = model.read_dir(self.dbdir)
        duration = self.rng.uniform(0.3, self.max_duration)
        proc, log = self._spawn(round_no, duration)
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=self.rng.uniform(0.1, duration + 1.0))
            self.figures.clean_stops += 1
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cut_time = time.time()
        reader.join()
        stderr = (self.work / "driver.err").read_text(errors="replace")
        if proc.returncode not in (0, -9) or "Traceback" in stderr:
            self.problem(round_no, f"driver failed (rc {proc.returncode}): {stderr[-2000:]}")
        reports = [orjson.loads(x) for x in lines if x.endswith(b"\n")]
        disk = self._replay(round_no, base, model.parse(log.read_bytes()))
        plain_kill = self.rng.random() < self.kill_share
        if plain_kill:
            self.figures.kills += 1
            image = model.read_dir(self.dbdir)  # kill -9 only: the page cache survives
        else:
            self.figures.cuts += 1
            torn = self.rng.random() < self.torn_share
            self.figures.torn += torn
            image = disk.image(self.rng if torn else None)
            wal = disk.entries.get(DB + "-wal")
            if wal is not None:
                unsynced_kib = sum(len(d) for k, _o, d in wal.pending if k == "w") / 1024
                self.figures.max_unsynced_wal_kib = max(self.figures.max_unsynced_wal_kib, round(unsynced_kib, 1))
            self.boot += 1
        model.write_dir(self.dbdir, image)
        self._check(round_no, reports, inspect(image, self.work / "check"), cut_time, plain_kill)

    def _replay(self, round_no: int, base: dict[str, bytes], ops: list[model.Op]) -> model.Disk:
        """The model of the disk; its page-cache view must match the real files, which
        proves the log saw every change (a kill may fall between logging a call and running it)."""
        real = model.read_dir(self.dbdir)
        for n in (len(ops), len(ops) - 1):
            disk = model.Disk(self.dbdir, base)
            disk.apply(ops[: max(n, 0)])
            seen = disk.current()
            extra = {k for k in real.keys() - seen.keys() if not real[k]}  # created, killed before logged
            if seen == {k: v for k, v in real.items() if k not in extra}:
                return disk
        self.problem(round_no, "write log does not explain the files: the shim missed a call")
        return disk

    # ------------------------------------------------------------------ checks
    def _check(self, round_no: int, reports: list[dict[str, Any]], after: Inspection, cut_time: float, plain_kill: bool) -> None:
        f = self.figures
        if not after.ok:
            f.integrity_failures += 1
            self.problem(round_no, "PRAGMA integrity_check failed after the cut")
        opened = [r for r in reports if "open" in r]
        if opened and opened[0]["open"] > self.last_seq:
            f.seq_jumps.append(opened[0]["open"] - self.last_seq)
        commits: list[tuple[int, str, str, str, float, str]] = [
            (seq, kind, ch, prev, r["t"], r["sync"]) for r in reports if "c" in r for seq, kind, ch, prev in r["c"]
        ]
        for r in reports:
            self.acked.update(r.get("a", ()))
        last_full = max((i for i, c in enumerate(commits) if c[5] == "power_loss"), default=-1)
        lost_here: list[tuple[int, str, str, str, float, str]] = []
        for i, (seq, kind, ch, prev, _t, _sync) in enumerate(commits):
            level = self.durability[kind]
            f.committed[level] += 1
            old = self.history.get(seq)
            if old is not None and old != ch:
                self.problem(round_no, f"seq {seq} reused: committed again with different content")
            self.history[seq] = ch
            if seq > after.last_seq:
                lost_here.append(commits[i])
                f.lost[level] += 1
                if level == "power_loss" or i <= last_full or plain_kill:
                    self.problem(round_no, f"committed {kind} seq {seq} ({level}) lost by the cut")
                if seq in after.bodies:
                    self.problem(round_no, f"seq {seq} present but above the state's last_seq")
            else:
                self.stream[seq] = (ch, prev)
                if seq not in after.bodies and seq not in self.acked:
                    self.problem(round_no, f"committed {kind} seq {seq} vanished (never acked)")
        for seq, *_ in lost_here:
            self.stream.pop(seq, None)
        if lost_here:
            f.cuts_with_loss += 1
            f.max_lost_records = max(f.max_lost_records, len(lost_here))
            f.max_lost_window_s = max(f.max_lost_window_s, round(cut_time - min(c[4] for c in lost_here), 3))
        self._check_survivors(round_no, after)
        top = max(self.history, default=0)
        if top > after.floor:
            self.problem(round_no, f"seq floor file says {after.floor}, but seq {top} was already issued")
        self.last_seq = after.last_seq

    def _check_survivors(self, round_no: int, after: Inspection) -> None:
        previous: dict[str, Any] | None = None
        for seq in sorted(after.bodies):
            doc = after.bodies[seq]
            if chain.link(doc["prev"], doc, KEY) != doc["chain"]:
                self.problem(round_no, f"seq {seq}: stored chain does not match its content")
            if self.history.setdefault(seq, doc["chain"]) != doc["chain"]:
                self.problem(round_no, f"seq {seq}: stored record differs from the one committed")
            if previous is not None and previous["seq"] == seq - 1 and doc["prev"] != previous["chain"]:
                self.problem(round_no, f"seq {seq} does not follow seq {seq - 1}")
            if seq > after.last_seq:
                self.problem(round_no, f"seq {seq} stored above last_seq {after.last_seq}")
            self.stream[seq] = (doc["chain"], doc["prev"])
            previous = doc
        if after.last_seq in self.stream and after.head != self.stream[after.last_seq][0]:
            self.problem(round_no, f"state chain_head is not the chain of seq {after.last_seq}")

    def _check_stream(self) -> None:
        """What survives, in seq order, is one unbroken chain (gaps only where acked or jumped)."""
        previous: tuple[int, str] | None = None
        for seq in sorted(self.stream):
            ch, prev = self.stream[seq]
            if previous is not None and prev != previous[1]:
                self.problem(-1, f"chain broken: seq {seq} does not follow seq {previous[0]}")
            previous = (seq, ch)
