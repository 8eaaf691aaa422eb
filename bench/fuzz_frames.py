"""Fuzz the field-bus answer parsers with malformed and random frames: 0 crashes, 0 hangs, flat memory.

    .venv/bin/python -m bench.fuzz_frames [--frames 100000] [--socket-frames 5000] [--seed 1]

Everything a device sends is hostile. Each target takes frames built from valid answers and
then mutated (bit flips, truncation, insertion, deletion, lying length/byte-count fields,
spliced frames, pure noise), and checks that the parser either returns values of the right
shape or raises one of our ``DriverError`` types — anything else is a crash, anything slower
than ``HANG_S`` a hang. Targets:

* ``rtu``: Modbus RTU framing on the bus thread (``receive_read``) and the parser behind it,
  fed through a scripted line (bytes that stop arriving behave as on a quiet line: fewer bytes).
* ``dlt645``: the DL/T 645 receiver and decoder (``receive_frame``, split into random chunks)
  and the value decoding (``interpret_reply``: error replies, wrong meter, BCD, identifiers).
* ``tcp``: pymodbus' socket framer and PDU decoder with our ``interpret_response`` after it.
* ``tcp-socket``: the real ``TcpLink`` against a TCP server answering every request with a
  mutated answer over loopback (slower: timeouts are real), many links at once.

A fast slice of each runs in the test suite (tests/drivers/test_fuzz_slice.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU

from agent.logsetup import quiet_third_party
from config.drivers import RegisterTable
from drivers import dlt645, modbus_rtu
from drivers.bus import Line
from drivers.dlt645_driver import interpret_reply, receive_frame
from drivers.dlt645_ids import FORMATS, bcd_encode
from drivers.errors import DriverError
from drivers.modbus_tcp import TcpLink, interpret_response

#: a single frame taking longer than this to parse is a hang
HANG_S = 1.0
TABLES = (RegisterTable.HOLDING, RegisterTable.INPUT, RegisterTable.COIL, RegisterTable.DISCRETE)


@dataclass
class Outcome:
    """What one target did with its frames."""

    target: str
    frames: int = 0
    results: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    hangs: int = 0
    slowest_ms: float = 0.0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    seconds: float = 0.0

    def note(self, result: str, elapsed: float) -> None:
        self.frames += 1
        self.results[result] += 1
        self.slowest_ms = max(self.slowest_ms, elapsed * 1000)
        if elapsed > HANG_S:
            self.hangs += 1

    def crash(self, frame: bytes, exc: BaseException) -> None:
        self.results["CRASH"] += 1
        if len(self.crashes) < 20:
            self.crashes.append(f"{type(exc).__name__}: {exc} on {frame.hex()}")


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """One or more random mutations of ``frame`` (sometimes none, sometimes pure noise)."""
    data = bytearray(frame)
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3, 5))):
        op = rng.randrange(9)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip one bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # replace a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 2:  # truncate
            del data[pos:]
        elif op == 3:  # insert random bytes
            data[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        elif op == 4 and data:  # delete a run
            del data[pos : pos + rng.randrange(1, 6)]
        elif op == 5 and len(data) > 2:  # interesting values in place
            data[rng.randrange(len(data))] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x68, 0x16))
        elif op == 6:  # duplicate a slice
            data[pos:pos] = data[rng.randrange(len(data) + 1) :][: rng.randrange(1, 12)]
        elif op == 7:  # splice noise on either end
            data = bytearray(rng.randbytes(rng.randrange(0, 6))) + data + rng.randbytes(rng.randrange(0, 6))
        else:  # extend with a lot of bytes (lying lengths, long garbage)
            data += rng.randbytes(rng.randrange(1, 300))
    if rng.random() < 0.05:
        return rng.randbytes(rng.randrange(0, 300))
    return bytes(data)


class ScriptedLine(Line):
    """The fuzz harness's serial line: it delivers the given bytes, then goes quiet.

    A quiet line returns fewer bytes than asked (``read_until``) exactly as a real port does at
    its deadline; ``read_available`` on a quiet line raises ``LineQuiet`` so a receiver that
    would poll until its deadline ends at once (the harness counts that as a timeout).
    """

    def __init__(self, data: bytes, rng: random.Random) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no port: every counter a Line keeps, none of its I/O
        self.data, self.pos, self.rng = data, 0, rng

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        self.received += len(chunk)
        return chunk

    def read_until(self, n: int, deadline: float) -> bytes:
        return self.read(n)

    def read_available(self) -> bytes:
        if self.pos >= len(self.data):
            raise LineQuiet
        return self.read(self.rng.randrange(1, 40))


class LineQuiet(Exception):
    """The scripted line has nothing more to say."""


def _check_values(values: list[int], count: int, bits: bool) -> None:
    if len(values) != count or not all(isinstance(v, int) and 0 <= v <= (1 if bits else 0xFFFF) for v in values):
        raise AssertionError(f"values of the wrong shape: {values[:8]}…")


def _valid_rtu(rng: random.Random) -> tuple[int, RegisterTable, int, bytes]:
    unit, table = rng.randrange(1, 248), rng.choice(TABLES)
    count = rng.randrange(1, 126)
    if table.is_bits:
        payload = rng.randbytes((count + 7) // 8)
    else:
        payload = b"".join(struct.pack(">H", rng.randrange(65536)) for _ in range(count))
    if rng.random() < 0.1:  # an exception reply
        body = bytes([unit, modbus_rtu.FUNCTION[table] | 0x80, rng.randrange(256)])
    else:
        body = bytes([unit, modbus_rtu.FUNCTION[table], len(payload) & 0xFF]) + payload
    return unit, table, count, modbus_rtu.with_crc(body)


def fuzz_rtu(frames: int, seed: int) -> Outcome:
    """Modbus RTU answers through the bus-thread receiver and the parser."""
    rng, out = random.Random(seed), Outcome("rtu")
    for _ in range(frames):
        unit, table, count, valid = _valid_rtu(rng)
        frame = mutate(rng, valid)
        if len(frame) > 2 and rng.random() < 0.5:  # past the CRC: reach the parser's own checks
            frame = modbus_rtu.with_crc(frame[:-2])
        t0 = time.perf_counter()
        try:
            values = modbus_rtu.receive_read(unit, table, count)(ScriptedLine(frame, rng), time.monotonic() + 1)
            _check_values(values, count, table.is_bits)
            result = "values"
        except DriverError as exc:
            result = type(exc).__name__
        except Exception as exc:  # anything else is the finding
            out.crash(frame, exc)
            continue
        out.note(result, time.perf_counter() - t0)
    return out


def _valid_dlt645(rng: random.Random) -> tuple[str, str, bytes]:
    address = "".join(rng.choice("0123456789") for _ in range(12))
    di = rng.choice(list(FORMATS))
    fmt = FORMATS[di]
    if rng.random() < 0.1:
        frame = dlt645.encode(address, dlt645.C_READ_ERR, bytes([rng.randrange(256)]), wake=rng.random() < 0.5)
    else:
        value = rng.uniform(-1, 1) * 10 ** (fmt.nbytes * 2 - fmt.decimals - 1) if fmt.signed else rng.uniform(0, 10**4)
        data = dlt645.di_bytes(di) + bcd_encode(value, fmt.nbytes, fmt.decimals, fmt.signed)
        frame = dlt645.encode(address, rng.choice((dlt645.C_READ_OK, dlt645.C_READ_OK_MORE)), data, wake=rng.random() < 0.5)
    return address, di, frame


def _fix_checksum(frame: bytes) -> bytes:
    """Recompute CS over the frame from its first 0x68 to the byte before CS (if it has the shape)."""
    start = frame.find(0x68)
    if start < 0 or len(frame) < start + 12:
        return frame
    body = bytearray(frame)
    body[-2] = sum(body[start:-2]) & 0xFF
    return bytes(body)


def fuzz_dlt645(frames: int, seed: int) -> Outcome:
    """DL/T 645 answers through the receiver (random chunking) and the value decoding."""
    rng, out = random.Random(seed), Outcome("dlt645")
    want = (dlt645.C_READ_OK, dlt645.C_READ_OK_MORE)
    for _ in range(frames):
        address, di, valid = _valid_dlt645(rng)
        frame = mutate(rng, valid)
        if rng.random() < 0.5:  # past the checksum: reach the length, BCD and identifier checks
            frame = _fix_checksum(frame)
        t0 = time.perf_counter()
        try:
            line = ScriptedLine(frame, rng)
            reply = receive_frame(want)(line, time.monotonic() + 1)
            value = interpret_reply(reply, address, di)
            if not isinstance(value, float) or value != value:
                raise AssertionError(f"not a number: {value!r}")
            result = "value"
        except LineQuiet:
            result = "BadFrame" if line.received else "Timeout"  # what the receiver says at its deadline
        except DriverError as exc:
            result = type(exc).__name__
        except Exception as exc:  # anything else is the finding
            out.crash(frame, exc)
            continue
        out.note(result, time.perf_counter() - t0)
    return out


def _valid_tcp(rng: random.Random) -> tuple[int, int, RegisterTable, int, bytes]:
    unit, tid, table = rng.randrange(1, 248), rng.randrange(1, 65536), rng.choice(TABLES)
    count = rng.randrange(1, 126)
    if table.is_bits:
        payload = rng.randbytes((count + 7) // 8)
    else:
        payload = b"".join(struct.pack(">H", rng.randrange(65536)) for _ in range(count))
    func = modbus_rtu.FUNCTION[table]
    pdu = bytes([func | 0x80, rng.randrange(256)]) if rng.random() < 0.1 else bytes([func, len(payload) & 0xFF]) + payload
    return unit, tid, table, count, struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def fuzz_tcp_framer(frames: int, seed: int) -> Outcome:
    """Modbus TCP answers through pymodbus' framer and decoder, then ``interpret_response``."""
    rng, out = random.Random(seed), Outcome("tcp")
    framer = FramerSocket(DecodePDU(False))
    for _ in range(frames):
        unit, tid, table, count, valid = _valid_tcp(rng)
        frame = mutate(rng, valid)
        t0 = time.perf_counter()
        try:
            _, pdu = framer.handleFrame(frame, unit, tid)
            if pdu is None:
                result = "incomplete"
            else:
                values = interpret_response(pdu, table, count)
                _check_values(values, count, table.is_bits)
                result = "values"
        except ModbusException:
            result = "ModbusException"  # TcpLink maps these to BadFrame
        except DriverError as exc:
            result = type(exc).__name__
        except Exception as exc:  # anything else is the finding
            out.crash(frame, exc)
            continue
        out.note(result, time.perf_counter() - t0)
    return out


async def _serve_mutated(rng: random.Random) -> tuple[asyncio.Server, int]:
    """A TCP server that answers each request with a mutated version of its valid answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(12)  # MBAP + function + start + count
                tid, _, _, unit, func, _, count = struct.unpack(">HHHBBHH", head)
                table = next(t for t in TABLES if modbus_rtu.FUNCTION[t] == func)
                if table.is_bits:
                    payload = rng.randbytes((count + 7) // 8)
                else:
                    payload = b"".join(struct.pack(">H", rng.randrange(65536)) for _ in range(count))
                pdu = bytes([func, len(payload) & 0xFF]) + payload
                writer.write(mutate(rng, struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _fuzz_tcp_socket(frames: int, seed: int, links: int, timeout: float) -> Outcome:
    rng, out = random.Random(seed), Outcome("tcp-socket")
    server, port = await _serve_mutated(rng)
    remaining = frames

    async def one_link(k: int) -> None:
        nonlocal remaining
        link = TcpLink("127.0.0.1", port, 1 + k % 247, timeout)
        try:
            while remaining > 0:
                remaining -= 1
                table, count = rng.choice(TABLES), rng.randrange(1, 126)
                t0 = time.perf_counter()
                try:
                    values = await asyncio.wait_for(link.read_registers(table, rng.randrange(1000), count), timeout + 3)
                    _check_values(values, count, table.is_bits)
                    result = "values"
                except TimeoutError:
                    out.hangs += 1
                    result = "HANG"
                except DriverError as exc:
                    result = type(exc).__name__
                except Exception as exc:  # anything else is the finding
                    out.crash(b"(socket)", exc)
                    continue
                out.note(result, time.perf_counter() - t0 if result != "HANG" else 0.0)
        finally:
            await link.close()

    try:
        await asyncio.gather(*(one_link(k) for k in range(links)))
    finally:
        server.close()
        await server.wait_closed()
    return out


def fuzz_tcp_socket(frames: int, seed: int, links: int = 32, timeout: float = 0.3) -> Outcome:
    """The real ``TcpLink`` (pymodbus client) against mutated answers over loopback."""
    return asyncio.run(_fuzz_tcp_socket(frames, seed, links, timeout))


def run(target: str, fuzz: Callable[[int, int], Outcome], frames: int, seed: int) -> Outcome:
    """One target, timed, with RSS before and after (after a warm-up tenth)."""
    warm = max(1, frames // 10)
    fuzz(warm, seed + 1)
    rss0, t0 = _rss_mb(), time.perf_counter()
    out = fuzz(frames, seed)
    out.seconds, out.rss_start_mb, out.rss_end_mb = time.perf_counter() - t0, rss0, _rss_mb()
    out.target = target
    return out


def report(out: Outcome) -> str:
    top = ", ".join(f"{k} {v}" for k, v in out.results.most_common(6))
    return (
        f"{out.target:<10} frames {out.frames + len(out.crashes):>7}  crashes {out.results['CRASH']}  hangs {out.hangs}  "
        f"slowest {out.slowest_ms:.1f} ms  {out.seconds:.1f} s  RSS {out.rss_start_mb:.1f} → {out.rss_end_mb:.1f} MB\n"
        f"           outcomes: {top}" + "".join(f"\n           CRASH {c}" for c in out.crashes[:5])
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--frames", type=int, default=100_000, help="frames per in-process target")
    ap.add_argument("--socket-frames", type=int, default=5_000, help="requests answered over real TCP")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default="rtu,dlt645,tcp,tcp-socket")
    args = ap.parse_args()
    quiet_third_party()  # as the agent does: pymodbus logs every discarded frame with hex dumps
    targets: dict[str, tuple[Callable[[int, int], Outcome], int]] = {
        "rtu": (fuzz_rtu, args.frames),
        "dlt645": (fuzz_dlt645, args.frames),
        "tcp": (fuzz_tcp_framer, args.frames),
        "tcp-socket": (fuzz_tcp_socket, args.socket_frames),
    }
    bad = 0
    for name in args.targets.split(","):
        fuzz, frames = targets[name]
        out = run(name, fuzz, frames, args.seed)
        print(report(out), flush=True)
        bad += out.results["CRASH"] + out.hangs
    print("FAIL" if bad else "PASS: 0 crashes, 0 hangs")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
