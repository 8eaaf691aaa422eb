"""Polling real pymodbus servers (TCP and RTU on pty pairs) and a DL/T 645 meter simulator."""

from __future__ import annotations

import asyncio
import threading

import pytest

from buffer.record import Kind
from buffer.sink import ListSink
from config.drivers import BusSettings, Dlt645Device, ModbusRtuDevice, ModbusTcpDevice, PointSettings
from drivers.bus import SerialBus
from drivers.device import DevicePoller
from drivers.dlt645_driver import Dlt645Driver, discover
from drivers.errors import BAD_FRAME, BadFrame, DriverError, Timeout
from drivers.modbus_rtu import ModbusRtuDriver, crc16
from drivers.modbus_tcp import ModbusTcpDriver
from drivers.runtime import device_points
from hil.sim.dlt645_meter import MeterSimulator
from hil.sim.modbus_slaves import RegisterImage, ServerThread
from tests.drivers.conftest import GarbageTcpServer
from tests.support.broker import free_port


def device(**kw) -> ModbusTcpDevice:
    base = {"id": "plc", "protocol": "modbus_tcp", "host": "127.0.0.1", "timeout": 0.3, "retries": 0}
    return ModbusTcpDevice(**(base | kw))


def tcp_poller(dev: ModbusTcpDevice, sink: ListSink) -> DevicePoller:
    return DevicePoller(dev, device_points(dev), sink, ModbusTcpDriver(dev))


def telemetry(sink: ListSink) -> list[dict]:
    return [r.payload["values"] for r in sink.records if r.kind is Kind.TELEMETRY]


def test_tcp_values_quality_and_report_on_change(tcp_slave) -> None:
    image, port = tcp_slave
    image.set_float("holding", 0, 12.5)
    image.set_registers("holding", 10, [0x0000, 0x0001])  # uint32 CDAB = 65536
    image.set_registers("input", 20, [0b100])
    image.set_bits("coil", 5, [True])
    points = [
        PointSettings(name="speed", address=0, type="float32", unit="m/s", deadband=0.5),
        PointSettings(name="count", address=10, type="uint32", order="CDAB"),
        PointSettings(name="flag", table="input", address=20, type="bit", bit=2),
        PointSettings(name="pump", table="coil", address=5, type="bool"),
    ]
    sink = ListSink()
    poller = tcp_poller(device(port=port, points=points), sink)

    async def go() -> None:
        await poller.poll("default")
        await poller.poll("default")  # nothing changed: nothing reported
        image.set_float("holding", 0, 12.7)  # within the deadband
        await poller.poll("default")
        image.set_float("holding", 0, 14.0)
        await poller.poll("default")
        await poller.driver.close()

    asyncio.run(go())
    reports = telemetry(sink)
    assert reports[0] == {
        "speed": {"v": 12.5, "q": "good", "unit": "m/s"},
        "count": {"v": 65536, "q": "good"},
        "flag": {"v": True, "q": "good"},
        "pump": {"v": True, "q": "good"},
    }
    assert reports[1:] == [{"speed": {"v": 14.0, "q": "good", "unit": "m/s"}}]
    assert poller.health.state == "ok"


def test_illegal_address_block_is_split_and_remembered(tcp_slave) -> None:
    _, port = tcp_slave
    points = [PointSettings(name="ok", address=9990), PointSettings(name="beyond", address=10005)]
    sink = ListSink()
    poller = tcp_poller(device(port=port, points=points, gap_fill=20), sink)

    async def go() -> None:
        await poller.poll("default")
        first = poller.requests_issued
        await poller.poll("default")
        second = poller.requests_issued - first
        await poller.driver.close()
        assert first == 3  # the joint block, then each half
        assert second == 2  # remembered: no joint block again

    asyncio.run(go())
    values = telemetry(sink)[0]
    assert values["ok"]["q"] == "good"
    assert values["beyond"]["q"] == "bad" and "illegal data address" in values["beyond"]["reason"]
    assert poller.health.state == "degraded"


def test_dead_tcp_device_backs_off_and_reports_state() -> None:
    sink = ListSink()
    dev = device(port=free_port(), points=[PointSettings(name="x", address=0)], backoff_after=2, backoff_interval=60)
    poller = tcp_poller(dev, sink)

    async def go() -> None:
        for _ in range(6):
            await poller.poll("default")
        await poller.driver.close()

    asyncio.run(go())
    assert poller.requests_issued == 2  # two failures, then backing off for 60 s
    assert poller.health.state == "backoff"
    events = [r.payload for r in sink.records if r.kind is Kind.EVENT]
    assert events[-1]["state"] == "backoff" and "cannot connect" in events[-1]["reason"]
    bad = telemetry(sink)[0]["x"]
    assert bad["q"] == "bad" and bad["v"] is None


def test_dead_slave_on_shared_bus_costs_one_timeout_per_backoff_window(pty_pair) -> None:
    image = RegisterImage()
    image.set_registers("holding", 0, [42])
    server = ServerThread({1: image}, serial_port=pty_pair.b).start()
    bus = SerialBus(BusSettings(name="rs485", port=pty_pair.a, timeout=0.2))
    sink = ListSink()
    common = {
        "protocol": "modbus_rtu",
        "bus": "rs485",
        "timeout": 0.2,
        "retries": 0,
        "backoff_after": 2,
        "backoff_interval": 1.0,
        "points": [PointSettings(name="v", address=0)],
        "groups": [{"name": "default", "interval": 0.05}],
    }
    live = ModbusRtuDevice(id="live", unit=1, **common)
    dead = ModbusRtuDevice(id="dead", unit=7, **common)
    pollers = [DevicePoller(d, d.points, sink, ModbusRtuDriver(d, bus)) for d in (live, dead)]
    duration = 3.2

    async def go() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run_group("default", stop)) for p in pollers]
        await asyncio.sleep(duration)
        stop.set()
        await asyncio.gather(*tasks)
        await bus.close()

    asyncio.run(go())
    server.stop()
    live_p, dead_p = pollers
    # 2 failures to enter back-off, then at most one probe per 1 s window
    assert dead_p.requests_issued <= 2 + int(duration / 1.0) + 1
    assert dead_p.health.state == "backoff"
    assert live_p.health.state == "ok" and live_p.state["v"].value == 42
    # the live slave kept being polled: far more requests than the dead one
    assert live_p.requests_issued > 5 * dead_p.requests_issued


class GarbagePeer:
    """The far end of a pty answering every request with fixed bytes (a misbehaving slave)."""

    def __init__(self, port: str, answer: bytes) -> None:
        import serial

        self.serial = serial.Serial(port, 9600, timeout=0.05)
        self.answer = answer
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self._stop.is_set():
            if self.serial.read(8):
                self.serial.write(self.answer)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.serial.close()


def _rtu_frame(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_rtu_frame(bytes([1, 3, 2, 0, 42]))[:-1] + b"\x00", "crc error"),
        (b"\x13\x37\xde\xad\xbe\xef\x00", "crc error"),
        (_rtu_frame(bytes([1, 0x83, 2])), "exception 2: illegal data address"),
        (_rtu_frame(bytes([1, 3, 4, 0, 1, 0, 2])), "garbage"),
        (_rtu_frame(bytes([9, 3, 2, 0, 1])), "garbage: answer from unit 9"),
        (b"\x01\x83", BAD_FRAME),  # bytes came back, too few for a frame: not a timeout
    ],
)
def test_rtu_bad_answers_become_bad_quality_with_reason(pty_pair, answer: bytes, reason: str) -> None:
    peer = GarbagePeer(pty_pair.b, answer)
    bus = SerialBus(BusSettings(name="b", port=pty_pair.a, timeout=0.2))
    dev = ModbusRtuDevice(
        id="m", protocol="modbus_rtu", bus="b", unit=1, timeout=0.2, retries=0, points=[PointSettings(name="v", address=0)]
    )
    sink = ListSink()
    poller = DevicePoller(dev, dev.points, sink, ModbusRtuDriver(dev, bus))

    async def go() -> None:
        await poller.poll("default")
        await bus.close()

    asyncio.run(go())
    peer.stop()
    value = telemetry(sink)[0]["v"]
    assert value["q"] == "bad" and reason in value["reason"]


def test_dlt645_meter_profile_over_pty(pty_pair) -> None:
    meter = MeterSimulator(pty_pair.b, address="000000123456").start()
    del meter.values["02800002"]  # this meter does not support frequency: it answers with an error
    bus = SerialBus(BusSettings(name="b", port=pty_pair.a, baudrate=2400, parity="E", timeout=1.0))
    dev = Dlt645Device(
        id="meter", protocol="dlt645", bus="b", address="000000123456", profile="dlt645_three_phase", timeout=1.0, retries=0
    )
    sink = ListSink()
    poller = DevicePoller(dev, device_points(dev), sink, Dlt645Driver(dev, bus))

    async def go() -> str:
        await poller.poll("default")
        found = await discover(bus, 1.0)
        await bus.close()
        return found

    found = asyncio.run(go())
    meter.stop()
    assert found == "000000123456"
    values = telemetry(sink)[0]
    assert values["energy_total"] == {"v": 1234.56, "q": "good", "unit": "kWh"}
    assert values["voltage_a"]["v"] == pytest.approx(229.8)
    assert values["current_a"]["v"] == pytest.approx(12.345)
    assert values["p_total"]["v"] == pytest.approx(8.2)
    assert values["pf_total"]["v"] == pytest.approx(0.982)
    assert values["frequency"]["q"] == "bad" and "no requested data" in values["frequency"]["reason"]


#: a reply with a valid MBAP header but an unknown function code: pymodbus raises inside its own receive callback
_MBAP_UNKNOWN_FUNCTION = bytes([0, 1, 0, 0, 0, 3, 1, 0x55, 0])


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", BadFrame, BAD_FRAME),
        (_MBAP_UNKNOWN_FUNCTION, BadFrame, BAD_FRAME),
        (b"\x01\x02", BadFrame, BAD_FRAME),
        (b"", Timeout, "timeout: no answer — check the address, port and unit id"),
    ],
)
def test_tcp_garbage_is_a_bad_frame_and_silence_a_timeout(answer: bytes, kind: type, reason: str) -> None:
    server = GarbageTcpServer(answer)
    sink = ListSink()
    dev = device(port=server.port, points=[PointSettings(name="a", address=0), PointSettings(name="b", address=500)])
    poller = tcp_poller(dev, sink)

    async def go() -> BaseException | None:
        await poller.poll("default")
        try:
            await poller.driver.read(poller.blocks("default")[0])
        except DriverError as exc:
            return exc
        finally:
            await poller.driver.close()
        return None

    try:
        error = asyncio.run(go())
    finally:
        server.stop()
    assert type(error) is kind and error.reason == reason
    values = telemetry(sink)[0]
    assert values["a"] == {"v": None, "q": "bad", "reason": reason}
    assert poller.health.last_error == reason
    if kind is Timeout:  # a silent device ends the cycle: the second block is not asked for
        assert poller.requests_issued == 1 and values["b"]["reason"] == reason


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (b"\xfe\xfe\x68\x01\x02garbage\x16", BadFrame, BAD_FRAME),  # a wake-up and noise, never a whole frame
        (None, Timeout, "timeout: no answer"),
    ],
)
def test_dlt645_noise_is_a_bad_frame_and_silence_a_timeout(pty_pair, answer: bytes | None, kind: type, reason: str) -> None:
    peer = GarbagePeer(pty_pair.b, answer) if answer is not None else None
    bus = SerialBus(BusSettings(name="b", port=pty_pair.a, baudrate=2400, parity="E", timeout=0.3))
    dev = Dlt645Device(
        id="meter",
        protocol="dlt645",
        bus="b",
        address="000000123456",
        timeout=0.3,
        retries=0,
        points=[PointSettings(name="e", di="00010000")],
    )
    driver = Dlt645Driver(dev, bus)

    async def go() -> BaseException | None:
        try:
            await driver.read(driver.plan(dev.points, frozenset())[0])
        except DriverError as exc:
            return exc
        finally:
            await bus.close()
        return None

    error = asyncio.run(go())
    if peer is not None:
        peer.stop()
    assert type(error) is kind and error.reason.startswith(reason)
