"""S7 addresses and settings validated at load; planning and decoding without a PLC; snap7 stays unimported."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import ConfigError, load_settings_text
from config.drivers import S7Device
from config.s7addr import parse_address
from drivers.planner import optimum_count
from drivers.protocol import BadValue
from drivers.s7_plan import decode, plan_s7
from tests.support.agentproc import REPO

HEAD = "gateway: {site: s, id: g}\ndevices:\n  - id: plc\n    protocol: s7\n    host: 10.0.0.5\n"


@pytest.mark.parametrize(
    ("text", "type_name", "where"),
    [
        ("DB10.DBX4.2", None, ("DB", 10, 4, 2, "BOOL", 1)),
        ("db10.dbw6", "int", ("DB", 10, 6, 0, "INT", 2)),
        ("DB10.DBD8", "REAL", ("DB", 10, 8, 0, "REAL", 4)),
        ("%DB1.DBB20", "LREAL", ("DB", 1, 20, 0, "LREAL", 8)),
        ("DB1.DBB40", "STRING[20]", ("DB", 1, 40, 0, "STRING[20]", 22)),
        ("M4.2", None, ("M", 0, 4, 2, "BOOL", 1)),
        ("MB7", None, ("M", 0, 7, 0, "BYTE", 1)),
        ("MD8", "DINT", ("M", 0, 8, 0, "DINT", 4)),
        ("E0.1", None, ("I", 0, 0, 1, "BOOL", 1)),
        ("IW2", "WORD", ("I", 0, 2, 0, "WORD", 2)),
        ("A1.0", None, ("Q", 0, 1, 0, "BOOL", 1)),
        ("AB3", None, ("Q", 0, 3, 0, "BYTE", 1)),
        ("QD4", "DWORD", ("Q", 0, 4, 0, "DWORD", 4)),
    ],
)
def test_accepted_addresses(text: str, type_name: str | None, where: tuple[object, ...]) -> None:
    dev = S7Device.model_validate(
        {
            "id": "p",
            "protocol": "s7",
            "host": "h",
            "points": [{"name": "x", "address": text} | ({"type": type_name} if type_name else {})],
        }
    )
    loc = dev.points[0].s7
    assert (loc.area, loc.db, loc.byte, loc.bit, loc.type, loc.size) == where


@pytest.mark.parametrize(
    ("point", "key", "words"),
    [
        ("{name: x, address: DB10.DBQ4, type: INT}", "points[0].address", "DB<n>.DBX<byte>.<bit>"),
        ("{name: x, address: DB10.DBW6}", "points[0].address", "'type:' for 'DB10.DBW6': one of WORD, INT, UINT"),
        ("{name: x, address: DB10.DBW6, type: REAL}", "points[0].address", "fits type REAL"),
        ("{name: x, address: DB10.DBX4, type: BOOL}", "points[0].address", "<byte>.<bit>"),
        ("{name: x, address: M4.8}", "points[0].address", "bit number 0..7"),
        ("{name: x, address: DB0.DBW0, type: INT}", "points[0].address", "1..65535"),
        ("{name: x, address: 40001, type: INT}", "points[0].address", "S7 address string"),
        ("{name: x, address: MW4, type: float32}", "points[0].type", "REAL"),
        ("{name: x, address: MB4, type: 'STRING[300]'}", "points[0].type", "STRING[n] (n 1..254)"),
        ("{name: x, address: MW4, type: INT, table: holding}", "points[0].table", "area, byte, bit and width"),
        ("{name: x, address: M0.0, scale: 10}", "points[0]", "no scale/offset/deadband on a BOOL"),
    ],
)
def test_bad_points_are_located_and_show_the_syntax(point: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings_text(HEAD + "    points:\n      - " + point + "\n", "plc.yaml")
    problem = err.value.problems[0]
    assert problem.file == "plc.yaml" and problem.line == 7
    assert problem.key == f"devices[0].{key}" and words in problem.expected, str(err.value)


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("    unit: 1\n", "devices[0].unit", "rack/slot or tsap"),
        ("    tsap: '03.01'\n    slot: 2\n", "devices[0]", "either 'tsap' or 'rack'/'slot'"),
        ("    pdu_size: 100\n", "devices[0].pdu_size", "240"),
    ],
)
def test_bad_device_settings_name_the_key(extra: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings_text(HEAD + extra + "    points:\n      - {name: x, address: MW0, type: INT}\n")
    problem = err.value.problems[0]
    assert problem.key == key and words in problem.expected, str(err.value)


def test_rack_slot_and_tsap() -> None:
    base = {"id": "p", "protocol": "s7", "host": "h", "points": [{"name": "x", "address": "MB0"}]}
    assert S7Device.model_validate(base).remote_tsap() == (1, 0, 1)
    assert S7Device.model_validate(base | {"rack": 0, "slot": 2}).remote_tsap() == (1, 0, 2)
    assert S7Device.model_validate(base | {"tsap": "03.01"}).remote_tsap() == (3, 0, 1)
    assert S7Device.model_validate(base | {"tsap": "0122"}).remote_tsap() == (1, 1, 2)


def test_decode_is_big_endian_and_refuses_what_is_not_a_value() -> None:
    assert decode(parse_address("DB1.DBD0", "REAL"), struct.pack(">f", -1.5)) == -1.5
    assert decode(parse_address("DB1.DBW0", "INT"), b"\xff\xfe") == -2
    assert decode(parse_address("DB1.DBW0", "WORD"), b"\xff\xfe") == 0xFFFE
    assert decode(parse_address("DB1.DBX0.6", None), b"\x40") is True
    assert decode(parse_address("DB1.DBB0", "LREAL"), struct.pack(">d", 2.5e300)) == 2.5e300
    assert decode(parse_address("DB1.DBB0", "STRING[4]"), b"\x04\x02ok\0\0") == "ok"
    nan = decode(parse_address("DB1.DBD8", "REAL"), struct.pack(">f", float("nan")))
    assert isinstance(nan, BadValue) and "DB1.DBD8" in nan.reason
    liar = decode(parse_address("DB1.DBB0", "STRING[4]"), b"\x04\x09abcd")  # header claims 9 chars
    assert isinstance(liar, BadValue) and "9 characters" in liar.reason


def _points(spec: list[tuple[int, str]]) -> S7Device:
    width = {"BYTE": "B", "INT": "W", "REAL": "D", "LREAL": "B", "STRING[30]": "B"}
    pts = [{"name": f"p{i}", "address": f"DB1.DB{width[t]}{b}", "type": t} for i, (b, t) in enumerate(spec)]
    return S7Device.model_validate({"id": "p", "protocol": "s7", "host": "h", "points": pts})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.sampled_from(["BYTE", "INT", "REAL", "LREAL", "STRING[30]"])), min_size=1, max_size=40
    ),
    st.integers(0, 40),
)
def test_plan_is_optimal_and_never_exceeds_the_pdu(spec: list[tuple[int, str]], gap: int) -> None:
    points = _points(spec).points
    blocks = plan_s7(points, max_bytes=222, gap_fill=gap)
    assert all(b.count <= 222 for b in blocks)
    assert sorted(p.name for b in blocks for p in b.points) == sorted(p.name for p in points)
    for b in blocks:
        assert all(b.start <= p.s7.byte and p.s7.end <= b.end for p in b.s7_points)
    assert len(blocks) == optimum_count([(p.s7.byte, p.s7.size) for p in points], 222, gap)


IMPORT_CHECK = """
import importlib, pkgutil, sys, warnings
import agent, drivers
warnings.simplefilter("ignore")
for package in (agent, drivers):  # every module of the agent and the drivers, the S7 driver's own aside
    for mod in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if mod.name != "drivers.s7_driver":
            importlib.import_module(mod.name)
from buffer.sink import ListSink
from config import load_settings_text
from drivers.runtime import Drivers
head = "gateway: {site: s, id: g}\\ndevices:\\n"
modbus = "  - {id: m, protocol: modbus_tcp, host: 127.0.0.1, points: [{name: a, address: 0}]}\\n"
s7 = "  - {id: p, protocol: s7, host: 127.0.0.1, points: [{name: b, address: MW0, type: INT}]}\\n"
Drivers(load_settings_text(head + modbus), ListSink())
print("after modbus:", "snap7" in sys.modules)
Drivers(load_settings_text(head + modbus + s7), ListSink())
print("after s7:", "snap7" in sys.modules)
"""


def test_snap7_is_imported_only_when_an_s7_device_is_configured() -> None:
    res = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["after modbus: False", "after s7: True"]


MISSING_EXTRA = """
import sys
sys.modules["snap7"] = None  # as if the extra were not installed
from config import ConfigError, load_settings_text
text = "gateway: {site: s, id: g}\\ndevices:\\n  - {id: p, protocol: s7, host: h, points: [{name: b, address: MB0}]}\\n"
try:
    load_settings_text(text, "site.yaml")
except ConfigError as exc:
    print(exc)
"""


def test_an_s7_device_without_the_extra_installed_is_refused_at_check() -> None:
    res = subprocess.run([sys.executable, "-c", MISSING_EXTRA], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "site.yaml:3:" in res.stdout and "devices[0].protocol" in res.stdout
    assert "python-snap7 is not installed" in res.stdout and "pip install 'headframe[s7]'" in res.stdout
