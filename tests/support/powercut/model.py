"""Replay the shim's write log into what a disk holds after a power cut.

The model is POSIX's promise and nothing more: a file's data is on disk as of its last
fsync/fdatasync; a directory entry (create, rename, unlink) as of the directory's last fsync.
``strict`` images keep exactly that. ``torn`` images also keep a random part of what was not
yet synced, the way a real disk may have written some of it: a random prefix of the
directory operations (the filesystem journal keeps them in order) and, per file, a random
subset of the unsynced writes, each either whole or torn at 512-byte sectors. Bytes outside a
write are never touched (SQLite's "powersafe overwrite" assumption, true for ext4 on Linux).
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

T_OPEN, T_CLOSE, T_WRITE, T_TRUNC, T_SYNC, T_RENAME, T_UNLINK, T_TRUNCPATH, T_DUP, T_RESULT = range(1, 11)
_HDR = struct.Struct("<Iiqqii")
SECTOR = 512
#: SQLite's shared-memory index is written through mmap (invisible to the log) and rebuilt
#: from the WAL by the first connection after a crash, so it is never part of an image.
VOLATILE_SUFFIXES = ("-shm",)
O_CREAT, O_TRUNC = os.O_CREAT, os.O_TRUNC


@dataclass
class Op:
    type: int
    fd: int
    a: int
    b: int
    p1: bytes
    p2: bytes


def parse(raw: bytes) -> list[Op]:
    """The log's records; a record cut short by the kill is dropped, RESULTs amend their op."""
    ops: list[Op] = []
    at = 0
    while at + _HDR.size <= len(raw):
        typ, fd, a, b, n1, n2 = _HDR.unpack_from(raw, at)
        end = at + _HDR.size + n1 + n2
        if end > len(raw):
            break
        p1 = raw[at + _HDR.size : at + _HDR.size + n1]
        p2 = raw[at + _HDR.size + n1 : end]
        at = end
        if typ == T_RESULT:
            prev = ops[-1]
            if a < 0:
                ops.pop()  # the call failed: nothing changed
            elif prev.type == T_WRITE:
                prev.p1 = prev.p1[:a]  # short write
            continue
        ops.append(Op(typ, fd, a, b, p1, p2))
    return ops


@dataclass(eq=False)
class Inode:
    cur: bytearray
    durable: bytes
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)  # since the last sync


def _write(buf: bytearray, off: int, data: bytes) -> None:
    if off > len(buf):
        buf.extend(b"\0" * (off - len(buf)))
    buf[off : off + len(data)] = data


def _truncate(buf: bytearray, size: int) -> None:
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(b"\0" * (size - len(buf)))


class Disk:
    """One flat directory: its files as the process sees them and as the disk holds them."""

    def __init__(self, directory: Path, files: dict[str, bytes]) -> None:
        self.dir = str(directory)
        nodes = {name: Inode(bytearray(data), bytes(data)) for name, data in files.items()}
        self.entries: dict[str, Inode] = dict(nodes)
        self.durable_entries: dict[str, Inode] = dict(nodes)
        self.dir_pending: list[tuple[str, str, str, Inode | None]] = []
        self.fds: dict[int, Inode | None] = {}  # None: the directory itself
        self.syncs = 0

    def _name(self, path: bytes) -> str:
        text = path.decode()
        if os.path.dirname(text) != self.dir:
            raise ValueError(f"write log names {text!r}, outside {self.dir}")
        return os.path.basename(text)

    def apply(self, ops: list[Op]) -> None:
        for op in ops:
            getattr(self, f"_op{op.type}")(op)

    def _op1(self, op: Op) -> None:  # open
        if op.p1.decode() == self.dir:
            self.fds[op.fd] = None
            return
        name = self._name(op.p1)
        node = self.entries.get(name)
        if node is None:
            if not op.a & O_CREAT:
                raise ValueError(f"open of {name} without O_CREAT, but the model has no such file")
            node = Inode(bytearray(), b"")
            self.entries[name] = node
            self.dir_pending.append(("create", name, "", node))
        elif op.a & O_TRUNC:
            self._trunc(node, 0)
        self.fds[op.fd] = node

    def _op2(self, op: Op) -> None:  # close
        self.fds.pop(op.fd, None)

    def _node(self, fd: int) -> Inode:
        node = self.fds[fd]
        if node is None:
            raise ValueError("write to the directory fd")
        return node

    def _op3(self, op: Op) -> None:  # write
        node = self._node(op.fd)
        _write(node.cur, op.a, op.p1)
        node.pending.append(("w", op.a, op.p1))

    def _trunc(self, node: Inode, size: int) -> None:
        _truncate(node.cur, size)
        node.pending.append(("t", size, b""))

    def _op4(self, op: Op) -> None:  # ftruncate
        self._trunc(self._node(op.fd), op.a)

    def _op5(self, op: Op) -> None:  # fsync / fdatasync
        self.syncs += 1
        node = self.fds[op.fd]
        if node is None:
            self.durable_entries = dict(self.entries)
            self.dir_pending.clear()
        else:
            node.durable = bytes(node.cur)
            node.pending.clear()

    def _op6(self, op: Op) -> None:  # rename
        if not op.p1 or not op.p2:
            raise ValueError("rename across the watched directory is not modelled")
        old, new = self._name(op.p1), self._name(op.p2)
        self.entries[new] = self.entries.pop(old)
        self.dir_pending.append(("rename", old, new, None))

    def _op7(self, op: Op) -> None:  # unlink
        name = self._name(op.p1)
        self.entries.pop(name, None)
        self.dir_pending.append(("unlink", name, "", None))

    def _op8(self, op: Op) -> None:  # truncate(path)
        self._trunc(self.entries[self._name(op.p1)], op.a)

    def _op9(self, op: Op) -> None:  # dup
        self.fds[op.a] = self.fds[op.fd]

    # --------------------------------------------------------------- images
    def current(self) -> dict[str, bytes]:
        """What the process saw (the page cache); must equal the real files."""
        return {n: bytes(i.cur) for n, i in self.entries.items() if not n.endswith(VOLATILE_SUFFIXES)}

    def image(self, rng: random.Random | None = None) -> dict[str, bytes]:
        """The disk after a cut now: strict without ``rng``, torn with it."""
        entries = dict(self.durable_entries)
        if rng is not None:
            for kind, a, b, node in self.dir_pending[: rng.randint(0, len(self.dir_pending))]:
                if kind == "create" and node is not None:
                    entries[a] = node
                elif kind == "rename" and a in entries:
                    entries[b] = entries.pop(a)
                elif kind == "unlink":
                    entries.pop(a, None)
        out: dict[str, bytes] = {}
        for name, node in entries.items():
            if name.endswith(VOLATILE_SUFFIXES):
                continue
            out[name] = node.durable if rng is None else _torn(node, rng)
        return out


def _torn(node: Inode, rng: random.Random) -> bytes:
    buf = bytearray(node.durable)
    for kind, off, data in node.pending:
        fate = rng.random()
        if fate < 1 / 3:
            continue  # never reached the disk
        if kind == "t":
            _truncate(buf, off)
        elif fate < 2 / 3:
            _write(buf, off, data)
        else:  # torn: some of its sectors reached the disk
            end = off + len(data)
            start = off
            while start < end:
                stop = min(end, (start // SECTOR + 1) * SECTOR)
                if rng.random() < 0.5:
                    _write(buf, start, data[start - off : stop - off])
                start = stop
    return bytes(buf)


def read_dir(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and not p.name.endswith(VOLATILE_SUFFIXES)}


def write_dir(directory: Path, files: dict[str, bytes]) -> None:
    """Make ``directory`` hold exactly ``files`` (the disk after the reboot)."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.iterdir():
        p.unlink()
    for name, data in files.items():
        (directory / name).write_bytes(data)
