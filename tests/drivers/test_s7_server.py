"""The S7 driver against a real snap7 S7 server: types, coalescing, short DBs, refusals, reconnects."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from buffer.record import Kind
from buffer.sink import ListSink
from config.drivers import S7Device
from drivers.device import DevicePoller
from drivers.s7_driver import S7Driver
from tests.support.broker import free_port
from tests.support.s7plc import S7Plc

AREAS = {("DB", 10): 64, ("DB", 20): 1000, ("DB", 30): 10, ("M", 0): 16, ("I", 0): 8, ("Q", 0): 8}


@pytest.fixture
def plc() -> Iterator[S7Plc]:
    peer = S7Plc(AREAS).start()
    yield peer
    peer.stop()


def s7(port: int, points: list[dict[str, Any]], **kw: Any) -> S7Device:
    base = {"id": "plc", "protocol": "s7", "host": "127.0.0.1", "port": port, "timeout": 0.5, "retries": 0}
    return S7Device.model_validate(base | kw | {"points": points})


def poller_for(dev: S7Device) -> tuple[DevicePoller, S7Driver, ListSink]:
    sink = ListSink()
    driver = S7Driver(dev)
    return DevicePoller(dev, list(dev.points), sink, driver), driver, sink


def last_values(sink: ListSink) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in sink.records:
        if r.kind is Kind.TELEMETRY:
            out.update(r.payload["values"])
    return out


EVERY_TYPE = [
    {"name": "run", "address": "DB10.DBX0.0"},
    {"name": "trip", "address": "DB10.DBX0.7", "type": "BOOL"},
    {"name": "mode", "address": "DB10.DBB1"},
    {"name": "sint", "address": "DB10.DBB2", "type": "SINT"},
    {"name": "status", "address": "DB10.DBW4", "type": "WORD"},
    {"name": "temp", "address": "DB10.DBW6", "type": "INT", "scale": 0.1, "unit": "degC"},
    {"name": "uint", "address": "DB10.DBW8", "type": "UINT"},
    {"name": "alarms", "address": "DB10.DBD10", "type": "DWORD"},
    {"name": "count", "address": "DB10.DBD14", "type": "DINT"},
    {"name": "udint", "address": "DB10.DBD18", "type": "UDINT"},
    {"name": "speed", "address": "DB10.DBD22", "type": "REAL", "scale": 2, "offset": 1, "unit": "m/s"},
    {"name": "energy", "address": "DB10.DBB26", "type": "LREAL"},
    {"name": "tag", "address": "DB10.DBB34", "type": "STRING[10]"},
    {"name": "m_flag", "address": "M0.3"},
    {"name": "m_int", "address": "MW2", "type": "INT"},
    {"name": "m_real", "address": "MD4", "type": "REAL"},
    {"name": "in_bit", "address": "I0.1"},
    {"name": "in_word", "address": "EW2", "type": "WORD"},
    {"name": "out_bit", "address": "A1.0"},
    {"name": "out_dint", "address": "QD4", "type": "DINT"},
]


def load_values(plc: S7Plc, k: int) -> dict[str, Any]:
    """Write a pattern that differs per ``k`` into every area; return what each point must read."""
    plc.write("DB", 10, 0, bytes([0x01 if k == 0 else 0x80]))
    plc.pack("DB", 10, 1, ">Bb", 200 + k, -5 - k)
    plc.pack("DB", 10, 4, ">HhH", 0xBEEF + k, -1234 - k, 60000 + k)
    plc.pack("DB", 10, 10, ">IiIf", 0xDEADBEEF - k, -123456789 + k, 4000000000 + k, 12.5 + k)
    plc.pack("DB", 10, 26, ">d", 1e10 + 0.25 + k)
    plc.string("DB", 10, 34, 10, f"hoist-{k}")
    plc.write("M", 0, 0, bytes([0b1000 if k == 0 else 0]))
    plc.pack("M", 0, 2, ">hf", -300 + k, 3.75 * (k + 1))
    plc.write("I", 0, 0, bytes([0b10 * (1 - k)]))
    plc.pack("I", 0, 2, ">H", 0x1234 + k)
    plc.write("Q", 0, 1, bytes([k]))
    plc.pack("Q", 0, 4, ">i", -70000 - k)
    return {
        "run": k == 0,
        "trip": k == 1,
        "mode": 200 + k,
        "sint": -5 - k,
        "status": 0xBEEF + k,
        "temp": pytest.approx((-1234 - k) * 0.1),
        "uint": 60000 + k,
        "alarms": 0xDEADBEEF - k,
        "count": -123456789 + k,
        "udint": 4000000000 + k,
        "speed": pytest.approx((12.5 + k) * 2 + 1),
        "energy": 1e10 + 0.25 + k,
        "tag": f"hoist-{k}",
        "m_flag": k == 0,
        "m_int": -300 + k,
        "m_real": pytest.approx(3.75 * (k + 1)),
        "in_bit": k == 0,
        "in_word": 0x1234 + k,
        "out_bit": k == 1,
        "out_dint": -70000 - k,
    }


def test_every_type_and_area_decodes_and_follows_changes(plc: S7Plc) -> None:
    poller, driver, sink = poller_for(s7(plc.port, EVERY_TYPE))

    async def go() -> list[dict[str, Any]]:
        seen = []
        for k in (0, 1):
            expected = load_values(plc, k)
            await poller.poll("default")
            got = {n: e["v"] for n, e in last_values(sink).items()}
            assert {n: e["q"] for n, e in last_values(sink).items()} == dict.fromkeys(expected, "good")
            assert got == expected, k
            seen.append(got)
        await driver.close()
        return seen

    first, second = asyncio.run(go())
    assert all(first[n] != second[n] for n in first), "every value changed between the two reads"
    assert isinstance(first["count"], int) and isinstance(first["run"], bool) and isinstance(first["tag"], str)
    assert last_values(sink)["speed"]["unit"] == "m/s"
    # one request per area: DB10, M, I, Q — 20 points
    assert len(poller.blocks("default")) == 4 and poller.health.state == "ok"


def test_coalescing_requests_per_cycle_against_points(plc: S7Plc) -> None:
    """200 INTs over 400 bytes of DB20 + 16 merker bits + a far REAL: 4 requests a cycle, not 217."""
    points = [{"name": f"w{i}", "address": f"DB20.DBW{2 * i}", "type": "INT"} for i in range(200)]
    points += [{"name": f"m{i}", "address": f"M{i // 8}.{i % 8}"} for i in range(16)]
    points.append({"name": "far", "address": "DB20.DBD900", "type": "REAL"})
    poller, driver, _ = poller_for(s7(plc.port, points))  # pdu_size 240: 222 data bytes per answer
    blocks = poller.blocks("default")
    assert [(b.start, b.count) for b in blocks] == [(0, 222), (222, 178), (900, 4), (0, 2)]

    async def cycles(n: int) -> None:
        for _ in range(n):
            await poller.poll("default")
        await driver.close()

    asyncio.run(cycles(3))
    assert plc.reads == 3 * 4 and driver.requests == 3 * 4
    assert all(poller.state[p["name"]].quality == "good" for p in points)
    # a smaller gap_fill costs requests, never values
    sparse = s7(plc.port, [{"name": f"w{i}", "address": f"DB20.DBW{40 * i}", "type": "INT"} for i in range(5)], gap_fill=37)
    assert len(S7Driver(sparse).plan(sparse.points, frozenset())) == 5
    assert len(S7Driver(sparse.model_copy(update={"gap_fill": 38})).plan(sparse.points, frozenset())) == 1


def test_a_block_larger_than_the_granted_pdu_is_read_in_chunks(plc: S7Plc) -> None:
    """Asked for PDU 960, the server grants 480: the planned 942-byte block goes in 462-byte reads."""
    points = [{"name": f"d{i}", "address": f"DB20.DBD{4 * i}", "type": "DINT"} for i in range(225)]
    points.append({"name": "straddle", "address": "DB20.DBW461", "type": "INT"})  # bytes 461..462 cross the cut
    for i in range(225):
        plc.pack("DB", 20, 4 * i, ">i", i * 1000 - 7)
    plc.pack("DB", 20, 461, ">h", -4242)  # overwrites part of d115 and d115's neighbour: read both from bytes
    raw = bytes(plc.memory[("DB", 20)])
    poller, driver, _ = poller_for(s7(plc.port, points, pdu_size=960))
    assert [(b.start, b.count) for b in poller.blocks("default")] == [(0, 900)]

    async def go() -> None:
        await poller.poll("default")
        await driver.close()

    asyncio.run(go())
    assert driver.max_bytes == 462 and driver.requests == 2
    assert poller.state["straddle"].value == -4242
    for i in range(225):
        assert poller.state[f"d{i}"].value == int.from_bytes(raw[4 * i : 4 * i + 4], "big", signed=True)


def test_db_shorter_than_configured_marks_only_the_points_past_its_end(plc: S7Plc) -> None:
    """DB30 holds 10 bytes; points at bytes 10 and 20 are bad with the reason, the others good,
    and the next cycles read the good part in one request without asking for the rest again."""
    plc.pack("DB", 30, 0, ">h", 17)
    plc.pack("DB", 30, 8, ">h", -2)
    points = [
        {"name": "ok0", "address": "DB30.DBW0", "type": "INT"},
        {"name": "ok8", "address": "DB30.DBW8", "type": "INT"},
        {"name": "past10", "address": "DB30.DBW10", "type": "INT"},
        {"name": "past20", "address": "DB30.DBD20", "type": "REAL"},
        {"name": "elsewhere", "address": "DB10.DBW0", "type": "WORD"},
    ]
    poller, driver, sink = poller_for(s7(plc.port, points))

    async def go() -> list[int]:
        per_cycle = []
        for _ in range(3):
            before = driver.requests
            await poller.poll("default")
            per_cycle.append(driver.requests - before)
        await driver.close()
        return per_cycle

    per_cycle = asyncio.run(go())
    values = last_values(sink)
    assert values["ok0"] == {"v": 17, "q": "good"} and values["ok8"] == {"v": -2, "q": "good"}
    assert values["elsewhere"]["q"] == "good"
    for name, addr in (("past10", "DB30.DBW10"), ("past20", "DB30.DBD20")):
        assert values[name]["q"] == "bad" and addr in values[name]["reason"] and "shorter" in values[name]["reason"]
    assert per_cycle[1:] == [2, 2], per_cycle  # DB30 bytes 0..9 and DB10: the bad points are not asked for
    assert per_cycle[0] > 2  # the first cycle found them by halving the block


def test_missing_db_is_bad_with_its_number_and_the_rest_reads(plc: S7Plc) -> None:
    points = [{"name": "ghost", "address": "DB99.DBW0", "type": "INT"}, {"name": "ok", "address": "MW2", "type": "INT"}]
    poller, driver, sink = poller_for(s7(plc.port, points))

    async def go() -> None:
        await poller.poll("default")
        await driver.close()

    asyncio.run(go())
    values = last_values(sink)
    assert values["ok"]["q"] == "good"
    assert (
        values["ghost"]["q"] == "bad"
        and "DB99" in values["ghost"]["reason"]
        and "no such data block" in values["ghost"]["reason"]
    )
    assert poller.health.state == "degraded"


def test_refused_connection_names_the_plc_and_what_to_check() -> None:
    port = free_port()  # nothing listens here
    poller, _, sink = poller_for(s7(port, [{"name": "x", "address": "MW0", "type": "INT"}]))
    asyncio.run(poller.poll("default"))
    reason = last_values(sink)["x"]["reason"]
    assert f"127.0.0.1:{port}" in reason and "refused the connection" in reason
    assert poller.health.state == "offline" and poller.health.last_error == reason


class ClosingListener:
    """A real TCP listener that accepts and closes at once, as a CPU does for a wrong rack/slot TSAP."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(64)
            self.accepted += 1
            conn.close()


def test_wrong_rack_slot_says_to_check_rack_and_slot() -> None:
    listener = ClosingListener()
    try:
        poller, _, sink = poller_for(s7(listener.port, [{"name": "x", "address": "MW0", "type": "INT"}], rack=0, slot=3))
        asyncio.run(poller.poll("default"))
    finally:
        listener.sock.close()
    reason = last_values(sink)["x"]["reason"]
    assert "handshake" in reason and "rack 0 / slot 3" in reason and listener.accepted == 1


def test_reconnects_after_the_plc_goes_away_and_comes_back(plc: S7Plc) -> None:
    """Server stopped mid-run: points go bad naming the PLC; the poller backs off; after a restart
    on the same port the driver reconnects and reads the new values."""
    plc.pack("M", 0, 2, ">h", 1)
    dev = s7(plc.port, [{"name": "x", "address": "MW2", "type": "INT"}], backoff_after=1, backoff_interval=0.2)
    poller, driver, sink = poller_for(dev)

    async def poll_until(what: str, cond: Any, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await poller.poll("default")
            await asyncio.sleep(0.05)  # the poll interval, not a wait for the condition

    def state() -> tuple[Any, str]:
        st = poller.state["x"]
        return st.value, st.quality

    async def go() -> None:
        await poll_until("first value", lambda: state() == (1, "good"))
        plc.stop()
        await poll_until("the loss seen", lambda: state()[1] == "bad")
        assert poller.health.state in ("backoff", "offline")
        plc.pack("M", 0, 2, ">h", 2)
        plc.start()
        await poll_until("a value after the restart", lambda: state() == (2, "good"))
        await driver.close()

    asyncio.run(go())
    events = [r.payload for r in sink.records if r.kind is Kind.EVENT]
    lost = [e for e in events if e["state"] in ("offline", "backoff", "degraded")]
    assert lost and f"127.0.0.1:{plc.port}" in lost[0]["reason"]
    assert events[-1]["state"] == "ok"


def test_poll_groups_polled_at_once_share_one_connection(plc: S7Plc) -> None:
    """Each poll group is its own task; they must not race to open (and drop) connections."""
    plc.pack("M", 0, 2, ">h", 5)
    plc.pack("DB", 10, 6, ">h", 6)
    groups = [{"name": "default", "interval": 1.0}, {"name": "slow", "interval": 10.0}]
    points = [
        {"name": "fast", "address": "MW2", "type": "INT"},
        {"name": "slow", "address": "DB10.DBW6", "type": "INT", "group": "slow"},
    ]
    poller, driver, _ = poller_for(s7(plc.port, points, groups=groups))

    async def go() -> None:
        for _ in range(5):
            await asyncio.gather(poller.poll("default"), poller.poll("slow"))
        await driver.close()

    asyncio.run(go())
    assert (poller.state["fast"].value, poller.state["slow"].value) == (5, 6)
    assert driver.connects == 1 and driver.requests == 10


def test_a_plc_that_stops_answering_times_out_then_recovers(plc: S7Plc) -> None:
    """The server's scan holds DB10 (its area lock): the read times out naming the range, the
    connection is dropped; once DB10 is free again the next poll reconnects and reads."""
    from snap7.type import SrvArea

    plc.pack("DB", 10, 6, ">h", 41)
    poller, driver, sink = poller_for(s7(plc.port, [{"name": "x", "address": "DB10.DBW6", "type": "INT"}], timeout=0.3))
    assert plc.server is not None

    async def go() -> None:
        await poller.poll("default")
        plc.server.lock_area(SrvArea.DB, 10)
        try:
            await poller.poll("default")
        finally:
            plc.server.unlock_area(SrvArea.DB, 10)
        assert driver.client is None  # dropped: its answer may still come and must not be taken for the next one
        plc.pack("DB", 10, 6, ">h", 42)
        await poller.poll("default")
        await driver.close()

    asyncio.run(go())
    reports = [r.payload["values"]["x"] for r in sink.records if r.kind is Kind.TELEMETRY]
    assert [r["q"] for r in reports] == ["good", "bad", "good"] and reports[-1]["v"] == 42
    assert reports[1]["reason"] == "timeout: PLC 127.0.0.1 did not answer a read of DB10 bytes 6..7"
    assert driver.connects == 2


def test_a_listener_that_never_answers_the_handshake_is_a_connect_timeout() -> None:
    sock = socket.create_server(("127.0.0.1", 0))  # the kernel completes TCP; nobody answers COTP
    try:
        dev = s7(sock.getsockname()[1], [{"name": "x", "address": "MW0", "type": "INT"}], timeout=0.2)
        poller, _, sink = poller_for(dev)
        started = time.monotonic()
        asyncio.run(poller.poll("default"))
        took = time.monotonic() - started
    finally:
        sock.close()
    assert "no answer — check the address, cabling and firewall" in last_values(sink)["x"]["reason"]
    assert took < 0.2 + 0.5 + 1.5  # bounded by the device timeout (+0.5 s for the handshake), not snap7's 5 s


def test_an_answer_to_another_request_is_a_bad_frame_and_the_connection_is_made_again(plc: S7Plc) -> None:
    """The real server, made to echo a wrong PDU reference on one read (a gateway mixing up two
    clients): that answer is not taken as values; the next poll reconnects and reads."""
    assert plc.server is not None
    server = plc.server
    real = server._process_request
    wrong = {"left": 1}

    def process(data: bytes, addr: tuple[str, int]) -> bytes | None:
        answer = real(data, addr)
        if answer is not None and len(data) > 10 and data[10] == 0x04 and wrong["left"]:  # a read-var request
            wrong["left"] -= 1
            answer = answer[:4] + bytes([answer[4] ^ 0x55, answer[5]]) + answer[6:]
        return answer

    server._process_request = process  # type: ignore[method-assign]
    plc.pack("M", 0, 2, ">h", 9)
    poller, driver, sink = poller_for(s7(plc.port, [{"name": "x", "address": "MW2", "type": "INT"}]))

    async def go() -> None:
        await poller.poll("default")
        await poller.poll("default")
        await driver.close()

    asyncio.run(go())
    reports = [r.payload["values"]["x"] for r in sink.records if r.kind is Kind.TELEMETRY]
    assert reports[0]["q"] == "bad" and "bad frame" in reports[0]["reason"] and "another request" in reports[0]["reason"]
    assert reports[1] == {"v": 9, "q": "good"} and driver.connects == 2
