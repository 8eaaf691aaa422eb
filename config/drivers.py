"""Settings of field buses, devices (one model per protocol), their points, and the site operating state."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from config.opcua import OpcUaLogin, OpcUaMode, OpcUaSecurity, check_node_id
from config.s7addr import S7Location, normalise_type, parse_address
from config.types import Duration, Ident, StrictModel, rejected

DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool", "bit", "string"]
Order = Literal["ABCD", "CDAB", "BADC", "DCBA"]
Problem = tuple[tuple[str | int, ...], str, str]


class RegisterTable(StrEnum):
    """The four Modbus data tables (S7 and others map onto them or add their own)."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        """Coils and discrete inputs hold single bits, addressed one per bit."""
        return self in (RegisterTable.COIL, RegisterTable.DISCRETE)


#: registers a value of each type occupies (string: ``length``)
TYPE_REGISTERS = {
    "int16": 1,
    "uint16": 1,
    "bit": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
    "bool": 1,
}


class PointSettings(StrictModel):
    """One value read from a device: where it lives, how to decode it, when to report it."""

    name: Ident
    table: RegisterTable = RegisterTable.HOLDING
    address: int = Field(default=0, ge=0, le=65535, description="0-based protocol address")
    type: DataType = "uint16"
    order: Order = Field(default="ABCD", description="byte/word order: ABCD big-endian, CDAB word-swapped, ...")
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=64, description="registers of a string")
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    deadband: float = Field(default=0.0, ge=0)
    max_silent: Duration = Field(default=60.0, description="report at least this often even when unchanged")
    group: Ident = "default"
    writable: bool = False
    #: DL/T 645 data identifier (8 hex digits), for dlt645 devices instead of table/address
    di: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{8}$")
    #: OPC UA node id (``ns=2;s=Hoist.Speed``), for opcua devices instead of table/address
    node: str | None = None

    @field_validator("node")
    @classmethod
    def _node_id(cls, value: str | None) -> str | None:
        return None if value is None else check_node_id(value)

    @property
    def registers(self) -> int:
        if self.type == "string":
            return self.length or 1
        return TYPE_REGISTERS[self.type]

    @model_validator(mode="after")
    def _consistent(self) -> PointSettings:
        if self.type == "bit" and self.bit is None:
            raise ValueError("'bit: 0..15' for a point of type bit")
        if self.type == "string" and self.length is None:
            raise ValueError("'length' (registers) for a point of type string")
        if self.table.is_bits and self.type not in ("bool",):
            raise ValueError(f"type bool for table {self.table} (coils and discrete inputs are single bits)")
        if not self.table.is_bits and self.type == "bool":
            raise ValueError("type bit (with 'bit:') for a flag inside a register; bool is for coils/discrete")
        if self.address + self.registers - 1 > 65535:
            raise ValueError("a point that ends at or below address 65535")
        return self


class PollGroup(StrictModel):
    name: Ident
    interval: Duration = Field(ge=0.05)


class BusSettings(StrictModel):
    """A serial port shared by Modbus RTU and DL/T 645 devices (one request at a time)."""

    name: Ident
    port: str
    baudrate: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout: Duration = Field(default=0.5, gt=0, le=30)
    #: silence between a response and the next request (RS-485 turnaround, slow slaves)
    inter_frame: Duration = Field(default=0.005, ge=0, le=5)

    def line_settings(self) -> tuple[int, str, int, int]:
        return (self.baudrate, self.parity, self.stopbits, self.bytesize)


class Profile(StrictModel):
    """A device's published map; ``source`` cites the document it was taken from."""

    name: str
    title: str
    source: str
    protocol: Literal["modbus", "dlt645"]
    notes: str = ""
    max_registers: int | None = Field(default=None, ge=1, le=125)
    points: list[PointSettings]


# ------------------------------------------------------------------------------ devices
def _elsewhere(key: str, protocol: str, belongs: str) -> object:
    return rejected(f"no '{key}' on a {protocol} device ('{key}' is a setting of {belongs}; remove it, or check 'protocol:')")


#: the default of a rejected key: never set, never dumped (pydantic copies it per field)
_NOT = Field(default=None, exclude=True)


class DeviceBase(StrictModel):
    """What every polled device has, whatever its protocol: points, poll groups, retries, back-off."""

    id: Ident
    #: narrowed to one literal by each protocol's model (the union's discriminator)
    protocol: str
    enabled: bool = True
    profile: str | None = None
    points: list[PointSettings] = Field(default_factory=list)
    groups: list[PollGroup] = Field(default_factory=lambda: [PollGroup(name="default", interval=1.0)])
    timeout: Duration = Field(default=1.0, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=5)
    backoff_after: int = Field(default=3, ge=1, description="consecutive failures before backing off")
    backoff_interval: Duration = Field(default=30.0, ge=0.1, description="how often a dead device is tried")
    stale_after: float = Field(default=3.0, ge=1.0, description="group intervals without a fresh value → stale")

    @model_validator(mode="after")
    def _shape(self) -> DeviceBase:
        if not self.profile and not self.points:
            raise ValueError("'profile:' or 'points:' (a device with nothing to read)")
        groups = {g.name for g in self.groups}
        for p in self.points:
            if p.group not in groups:
                raise ValueError(f"point {p.name} in a poll group that exists (groups: {sorted(groups)})")
        names = [p.name for p in self.points]
        if len(names) != len(set(names)):
            raise ValueError("unique point names within a device")
        return self


class ModbusPlanning(StrictModel):
    """Request planning of register devices (Modbus TCP and RTU)."""

    unit: int = Field(default=1, ge=0, le=247, description="Modbus unit (slave) id")
    max_registers: int = Field(default=125, ge=1, le=125)
    max_bits: int = Field(default=2000, ge=1, le=2000)
    gap_fill: int = Field(default=8, ge=0, le=124, description="unused registers read to save a request")


class ModbusTcpDevice(DeviceBase, ModbusPlanning):
    """A PLC or meter on Modbus TCP (one connection per device)."""

    protocol: Literal["modbus_tcp"]
    host: str = Field(default="", description="IP address or DNS name of the device or gateway")
    port: int = Field(default=502, ge=1, le=65535)
    bus: Annotated[None, _elsewhere("bus", "modbus_tcp", "serial (modbus_rtu, dlt645) devices")] = _NOT
    address: Annotated[None, _elsewhere("address", "modbus_tcp", "dlt645 meters; Modbus uses 'unit'")] = _NOT

    @model_validator(mode="after")
    def _host(self) -> ModbusTcpDevice:
        if not self.host:
            raise ValueError("'host' for a modbus_tcp device")
        return self


class ModbusRtuDevice(DeviceBase, ModbusPlanning):
    """A Modbus RTU unit on a shared serial bus."""

    protocol: Literal["modbus_rtu"]
    bus: Ident = Field(default="", description="name of an entry under buses:")
    host: Annotated[None, _elsewhere("host", "modbus_rtu", "modbus_tcp devices; RTU devices use 'bus'")] = _NOT
    port: Annotated[None, _elsewhere("port", "modbus_rtu", "modbus_tcp devices; the serial port is the bus's")] = _NOT
    address: Annotated[None, _elsewhere("address", "modbus_rtu", "dlt645 meters; Modbus uses 'unit'")] = _NOT

    @model_validator(mode="after")
    def _bus(self) -> ModbusRtuDevice:
        if not self.bus:
            raise ValueError(f"'bus' (a name from buses:) for a {self.protocol} device")
        return self

    @field_validator("unit")
    @classmethod
    def _not_broadcast(cls, unit: int) -> int:
        if unit == 0:
            raise ValueError("a unit id 1..247 on a serial bus (0 is the broadcast address: no device answers it)")
        return unit


class Dlt645Device(DeviceBase):
    """A DL/T 645-2007 meter on a shared serial bus, read point by point by data identifier."""

    protocol: Literal["dlt645"]
    bus: Ident = Field(default="", description="name of an entry under buses:")
    address: str = Field(default="", description="DL/T 645 meter address, 12 digits")
    host: Annotated[None, _elsewhere("host", "dlt645", "modbus_tcp devices; meters use 'bus'")] = _NOT
    port: Annotated[None, _elsewhere("port", "dlt645", "modbus_tcp devices; the serial port is the bus's")] = _NOT
    unit: Annotated[None, _elsewhere("unit", "dlt645", "Modbus devices; a meter has a 12-digit 'address'")] = _NOT
    max_registers: Annotated[None, _elsewhere("max_registers", "dlt645", "Modbus devices")] = _NOT
    max_bits: Annotated[None, _elsewhere("max_bits", "dlt645", "Modbus devices")] = _NOT
    gap_fill: Annotated[None, _elsewhere("gap_fill", "dlt645", "Modbus devices")] = _NOT

    @model_validator(mode="after")
    def _meter(self) -> Dlt645Device:
        if not self.bus:
            raise ValueError(f"'bus' (a name from buses:) for a {self.protocol} device")
        if not re.fullmatch(r"\d{12}", self.address):
            raise ValueError("'address': the meter's 12-digit address (see: headframe probe dlt645 PORT --discover)")
        for p in self.points:
            if p.di is None:
                raise ValueError(f"'di:' (data identifier) on point {p.name} of a dlt645 device")
        return self


def _not_s7(key: str) -> object:
    return rejected(f"no '{key}' on an s7 point (area, byte, bit and width are all in 'address:', e.g. DB10.DBX4.2)")


class S7Point(PointSettings):
    """A point of an S7 PLC: ``address: DB10.DBD8`` and ``type: REAL`` (config/s7addr.py).

    The YAML keys ``address`` and ``type`` feed ``s7`` and ``s7_type`` (their Modbus namesakes
    keep their defaults and are never dumped), so the poller, the records and the rules see
    an ordinary point; only the S7 driver reads ``s7``.
    """

    address: Annotated[int, _not_s7("modbus_address")] = Field(default=0, validation_alias="modbus_address", exclude=True)
    type: Annotated[DataType, _not_s7("modbus_type")] = Field(default="uint16", validation_alias="modbus_type", exclude=True)
    table: Annotated[RegisterTable, _not_s7("table")] = Field(default=RegisterTable.HOLDING, exclude=True)
    order: Annotated[Order, _not_s7("order")] = Field(default="ABCD", exclude=True)
    bit: Annotated[int | None, _not_s7("bit")] = _NOT
    length: Annotated[int | None, rejected("no 'length' on an s7 point: write the type as STRING[n]")] = _NOT
    di: Annotated[str | None, _not_s7("di")] = _NOT
    writable: Annotated[bool, rejected("no 'writable' on an s7 point: the S7 driver only reads")] = Field(
        default=False, exclude=True
    )
    s7_type: str | None = Field(default=None, validation_alias="type", description="BOOL, INT, REAL, STRING[n], ...")
    s7: S7Location = Field(validation_alias="address", description="DB10.DBD8, MW4, I0.1, QB0, ...")

    @field_validator("s7_type", mode="before")
    @classmethod
    def _type(cls, value: object) -> str:
        return normalise_type(str(value))

    @field_validator("s7", mode="before")
    @classmethod
    def _where(cls, value: object, info: ValidationInfo) -> S7Location:
        if isinstance(value, S7Location):
            return value
        if not isinstance(value, str):
            raise ValueError("an S7 address string such as DB10.DBD8 (quote it in YAML if it starts with %)")
        return parse_address(value, info.data.get("s7_type"))

    @model_validator(mode="after")
    def _numeric_scaling(self) -> S7Point:
        not_a_number = self.s7.type == "BOOL" or self.s7.type.startswith("STRING")
        if not_a_number and (self.scale != 1.0 or self.offset != 0.0 or self.deadband):
            raise ValueError(f"no scale/offset/deadband on a {self.s7.type} point (they apply to numbers)")
        return self


class S7Device(DeviceBase):
    """A Siemens S7 PLC (S7-300/400/1200/1500, ET 200SP CPU) over ISO-on-TCP, read with snap7."""

    protocol: Literal["s7"]
    host: str = Field(default="", description="IP address or DNS name of the CPU (or its CP)")
    port: int = Field(default=102, ge=1, le=65535)
    rack: int = Field(default=0, ge=0, le=7)
    slot: int = Field(default=1, ge=0, le=31, description="S7-1200/1500: 1; S7-300: 2; S7-400: see hardware config")
    tsap: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{2}\.?[0-9A-Fa-f]{2}$", description="remote TSAP, e.g. 03.01")
    pdu_size: int = Field(default=240, ge=240, le=960, description="PDU asked for; the CPU may grant less")
    gap_fill: int = Field(default=32, ge=0, le=200, description="unused bytes read to save a request")
    points: list[S7Point] = Field(default_factory=list)  # type: ignore[assignment]  # S7Point is-a PointSettings
    bus: Annotated[None, _elsewhere("bus", "s7", "serial (modbus_rtu, dlt645) devices")] = _NOT
    unit: Annotated[None, _elsewhere("unit", "s7", "Modbus devices; an S7 CPU is found by rack/slot or tsap")] = _NOT
    address: Annotated[None, _elsewhere("address", "s7", "dlt645 meters; S7 points have their own 'address:'")] = _NOT
    max_registers: Annotated[None, _elsewhere("max_registers", "s7", "Modbus devices; S7 uses pdu_size")] = _NOT
    max_bits: Annotated[None, _elsewhere("max_bits", "s7", "Modbus devices")] = _NOT

    @model_validator(mode="after")
    def _where(self) -> S7Device:
        if not self.host:
            raise ValueError("'host' for an s7 device")
        if self.tsap is not None and {"rack", "slot"} & self.model_fields_set:
            raise ValueError("either 'tsap' or 'rack'/'slot', not both (the TSAP already names rack and slot)")
        return self

    def remote_tsap(self) -> tuple[int, int, int]:
        """(connection type, rack, slot) of the remote TSAP: 0x01 (PG) + rack/slot, or ``tsap``."""
        if self.tsap is None:
            return 1, self.rack, self.slot
        value = int(self.tsap.replace(".", ""), 16)
        return value >> 8, (value >> 5) & 0x07, value & 0x1F


#: register-protocol keys an OPC UA point does not have (addressed by ``node``, typed by the server)
_REGISTER_POINT_KEYS = ("table", "address", "type", "order", "bit", "length", "di")


class OpcUaDevice(DeviceBase):
    """A PLC or SCADA server speaking OPC UA (one session per device), points by node id.

    ``mode: subscribe`` (default) lets the server push data changes every
    ``publishing_interval``; ``poll`` reads all points of a group in one Read each interval.
    """

    protocol: Literal["opcua"]
    endpoint: str = Field(default="", description="opc.tcp://host:4840[/path]")
    mode: OpcUaMode = "subscribe"
    publishing_interval: Duration = Field(default=1.0, ge=0.05, le=3600)
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)
    login: OpcUaLogin | None = None
    timeout: Duration = Field(default=5.0, gt=0, le=60)
    host: Annotated[None, _elsewhere("host", "opcua", "modbus_tcp devices; OPC UA uses 'endpoint: opc.tcp://host:4840'")] = _NOT
    port: Annotated[None, _elsewhere("port", "opcua", "modbus_tcp devices; put the port in 'endpoint'")] = _NOT
    bus: Annotated[None, _elsewhere("bus", "opcua", "serial (modbus_rtu, dlt645) devices")] = _NOT
    unit: Annotated[None, _elsewhere("unit", "opcua", "Modbus devices")] = _NOT
    address: Annotated[None, _elsewhere("address", "opcua", "dlt645 meters")] = _NOT

    @model_validator(mode="after")
    def _opcua(self) -> OpcUaDevice:
        match = re.fullmatch(r"opc\.tcp://([^/?#@\s]+)(/[^\s]*)?", self.endpoint)
        if not match:
            hint = " (no user in the URL: use 'login:')" if "@" in self.endpoint else ""
            raise ValueError(f"'endpoint': opc.tcp://HOST:PORT[/path], e.g. opc.tcp://10.0.0.40:4840{hint}")
        for p in self.points:
            if p.node is None:
                raise ValueError(f"'node:' (an OPC UA node id such as 'ns=2;s=Hoist.Speed') on point {p.name}")
            extra = sorted(set(_REGISTER_POINT_KEYS) & p.model_fields_set)
            if extra:
                raise ValueError(f"no {', '.join(extra)} on point {p.name} of an opcua device (OPC UA points use 'node')")
        if self.login is not None and self.security.policy == "None" and not self.login.allow_cleartext_password:
            raise ValueError(
                "'security: {policy: Basic256Sha256, ...}' for a 'login': with policy None the password goes in clear "
                "to any server that answers at the endpoint (or 'login.allow_cleartext_password: true' in a lab)"
            )
        return self


#: One entry under ``devices:``; ``protocol`` picks the model.
DeviceSettings = Annotated[
    ModbusTcpDevice | ModbusRtuDevice | Dlt645Device | S7Device | OpcUaDevice, Field(discriminator="protocol")
]
SerialDevice = ModbusRtuDevice | Dlt645Device
#: which profile family (``Profile.protocol``) each device protocol can use
PROFILE_FAMILY = {"modbus_tcp": "modbus", "modbus_rtu": "modbus", "dlt645": "dlt645", "s7": "s7", "opcua": "opcua"}


class OperatingStateSettings(StrictModel):
    """Site "operating / stopped" derived from metered power; run by ``rules/opstate.py``."""

    enabled: bool = False
    #: ``device.point`` names whose values (kW) are summed
    power_points: list[str] = Field(default_factory=list)
    on_above_kw: float = Field(default=50.0, ge=0)
    off_below_kw: float = Field(default=20.0, ge=0)
    min_duration: Duration = 60.0
    #: a reading older than this leaves the sum (a dead meter's last value must not count for ever);
    #: above the poller's ``max_silent`` (60 s), which re-reports unchanged values
    max_age: Duration = 180.0

    @model_validator(mode="after")
    def _hysteresis(self) -> OperatingStateSettings:
        if self.off_below_kw > self.on_above_kw:
            raise ValueError("off_below_kw not above on_above_kw (that is the hysteresis band)")
        if self.enabled and not self.power_points:
            raise ValueError("'power_points' (device.point of meter power, kW) when enabled")
        return self


def cross_check(
    buses: Sequence[BusSettings], devices: Sequence[DeviceSettings], op: OperatingStateSettings, profiles: Mapping[str, Profile]
) -> list[Problem]:
    """Bus references, one setting per physical port, unique ids, known profiles and points.

    ``profiles`` are passed in by the loader, so this module never imports the profile loader.
    """
    problems: list[Problem] = []
    by_name = {b.name: (i, b) for i, b in enumerate(buses)}
    names = [b.name for b in buses]
    seen_ports: dict[str, tuple[int, BusSettings]] = {}
    for i, bus in enumerate(buses):
        if names.count(bus.name) > 1 or by_name[bus.name][0] != i:
            problems.append((("buses", i, "name"), repr(bus.name), "a bus name used once"))
        other = seen_ports.get(bus.port)
        if other is not None:
            j, first = other
            same = first.line_settings() == bus.line_settings()
            problems.append(
                (
                    ("buses", i, "port"),
                    f"{bus.port!r}, already used by bus '{first.name}' (buses[{j}])"
                    + ("" if same else " with different settings"),
                    "one bus entry per serial port; put every device on that port on the same bus",
                )
            )
        else:
            seen_ports[bus.port] = (i, bus)
    ids: set[str] = set()
    point_names: dict[str, set[str]] = {}
    for i, dev in enumerate(devices):
        if dev.id in ids:
            problems.append((("devices", i, "id"), repr(dev.id), "a device id used once"))
        ids.add(dev.id)
        if isinstance(dev, S7Device) and importlib.util.find_spec("snap7") is None:
            problems.append(
                (("devices", i, "protocol"), "'s7', but python-snap7 is not installed", "pip install 'headframe[s7]' first")
            )
        if isinstance(dev, SerialDevice) and dev.bus not in by_name:
            problems.append((("devices", i, "bus"), repr(dev.bus), f"one of the buses: {sorted(by_name) or 'none defined'}"))
        profile = profiles.get(dev.profile) if dev.profile is not None else None
        if dev.profile is not None and profile is None:
            problems.append((("devices", i, "profile"), repr(dev.profile), f"one of {sorted(profiles)}"))
        elif profile is not None and profile.protocol != PROFILE_FAMILY[dev.protocol]:
            fits = sorted(n for n, p in profiles.items() if p.protocol == PROFILE_FAMILY[dev.protocol])
            problems.append(
                (
                    ("devices", i, "profile"),
                    f"{dev.profile!r}, a {profile.protocol} profile",
                    f"a profile for {dev.protocol} devices: one of {fits}",
                )
            )
        point_names[dev.id] = {p.name for p in dev.points} | ({p.name for p in profile.points} if profile else set())
    for k, ref in enumerate(op.power_points):
        dev_id, _, point = ref.partition(".")
        if dev_id not in point_names or point not in point_names[dev_id]:
            problems.append((("operating_state", "power_points", k), repr(ref), "device.point of a configured device"))
    return problems
