"""Fault scenarios as YAML: steps and expectations, validated before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from config.types import ByteSize, StrictModel
from config.yamlio import parse_yaml, plain, validate_tree
from hil.expect import check_spec, validate


class Wait(StrictModel):
    action: Literal["wait"]
    seconds: float = Field(gt=0)


class Proxy(StrictModel):
    action: Literal["proxy"]
    mode: Literal["pass", "drop", "blackhole", "delay", "flap"]
    delay_s: float = 0.5
    flap_s: float = 2.0


class Camera(StrictModel):
    action: Literal["camera"]
    name: Literal["shaft", "seal"]
    mode: Literal["normal", "covered", "frozen", "blurred", "down"] | None = None
    #: what the stream shows from now on: ``people`` (vtest.avi, people walking) or ``empty``
    #: (tree.avi, no one), at the stream's own resolution (a person walks into a seal camera's view)
    clip: Literal["people", "empty"] | None = None

    @model_validator(mode="after")
    def _something(self) -> Camera:
        if self.mode is None and self.clip is None:
            raise ValueError("'mode' or 'clip' (or both)")
        return self


class Device(StrictModel):
    action: Literal["device"]
    name: Literal["plc", "dlt645"]
    state: Literal["dead", "alive"]


class SerialNoise(StrictModel):
    action: Literal["serial_noise"]
    enabled: bool


class KillAgent(StrictModel):
    """SIGKILL: what a power cut looks like to the process."""

    action: Literal["kill_agent"]


class StartAgent(StrictModel):
    action: Literal["start_agent"]
    clock: Literal["synced", "unsynced", "kernel"] = "kernel"
    #: a SIMULATED reboot before this start (test hook HEADFRAME_FAKE_BOOT_ID: a new boot id),
    #: so a killed agent looks unplugged, as it would after a real power-off
    reboot: bool = False


class Ups(StrictModel):
    """Flip what the site's real UPS (upsd + dummy-ups) reports; needs ``ups: true`` on the scenario."""

    action: Literal["ups"]
    #: NUT ups.status: on line, on battery (mains lost), on battery with low battery
    status: Literal["OL", "OB", "OB LB"]
    charge: int = Field(default=100, ge=0, le=100)
    runtime: int = Field(default=1800, ge=0)
    #: wait until upsd itself reports the new status (the driver re-reads its file every second)
    timeout: float = Field(default=10, gt=0)


class WaitAgentExit(StrictModel):
    """The agent must exit by itself (e.g. a clean stop on low battery) within ``timeout``."""

    action: Literal["wait_agent_exit"]
    timeout: float = Field(default=30, gt=0)
    #: the exit status it must have (0: a clean stop)
    code: int | None = 0


SiteModeName = Literal["operating", "stopped", "secretly_running", "pumps_and_fans"]


class SiteMode(StrictModel):
    action: Literal["site_mode"]
    mode: SiteModeName
    #: start the plant's cycles (hoist trip, pumps) from their beginning, as a plant switched on
    #: does: the hoist runs for its first 40 s, so a scenario knows it draws current now
    cycle_from_start: bool = False


class WaitDrained(StrictModel):
    action: Literal["wait_drained"]
    timeout: float = Field(default=60, gt=0)


class Publish(StrictModel):
    """Publish a message on the real broker, as the platform would (e.g. a command)."""

    action: Literal["publish"]
    #: ``${command_topic}`` is the gateway's inbound command topic (docs/mqtt.md "Commands")
    topic: str = "${command_topic}"
    #: a JSON object, sent as compact JSON …
    payload: dict[str, Any] | None = None
    #: … or these exact bytes (UTF-8), for malformed input
    raw: str | None = None
    retain: bool = False
    qos: Literal[0, 1, 2] = 1

    @model_validator(mode="after")
    def _one_body(self) -> Publish:
        if (self.payload is None) == (self.raw is None):
            raise ValueError("exactly one of 'payload' (a JSON object) or 'raw' (a string sent as it is)")
        return self


class WaitFor(StrictModel):
    """Wait until the recorder has seen what ``record`` expects (an expectation, hil/expect.py,
    e.g. ``{kind: alarm, alarm: tamper, after_step: 3}``): a step that waits on the condition,
    not on a guessed time, so a loaded machine is slower but not wrong. Fails after ``timeout``."""

    action: Literal["wait_for"]
    record: dict[str, Any]
    timeout: float = Field(default=30, gt=0)
    #: at least this many distinct records (by seq) must match
    count: int = Field(default=1, ge=1)

    _spec = field_validator("record")(lambda cls, v: check_spec(v, "record", facts=True))


class FillDisk(StrictModel):
    """Fill the buffer's tmpfs (``buffer_tmpfs``) with a file until only ``leave`` bytes are free."""

    action: Literal["fill_disk"]
    leave: ByteSize = 0


class FreeDisk(StrictModel):
    """Remove what ``fill_disk`` wrote."""

    action: Literal["free_disk"]


Step = Annotated[
    Wait
    | Proxy
    | Camera
    | Device
    | SerialNoise
    | KillAgent
    | StartAgent
    | SiteMode
    | WaitDrained
    | Ups
    | WaitAgentExit
    | Publish
    | WaitFor
    | FillDisk
    | FreeDisk,
    Field(discriminator="action"),
]


class Count(StrictModel):
    """How many distinct records (by seq) match ``match``."""

    match: dict[str, Any]
    equals: int | None = Field(default=None, ge=0)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    _spec = field_validator("match")(lambda cls, v: check_spec(v))

    @model_validator(mode="after")
    def _bound(self) -> Count:
        if self.equals is None and self.min is None and self.max is None:
            raise ValueError("'equals', 'min' or 'max'")
        return self


class Expect(StrictModel):
    all_delivered: bool = False
    ordered_per_source: bool = False
    chain_intact: bool = False
    agent_alive: bool = True
    #: each entry: kind, optional source, and payload keys that must match (hil/expect.py: a dotted
    #: key reaches into nested payload objects, ``previous_run.ended: mains_failure``; operators,
    #: ``count``/``min``/``max`` and ``after_step``/``before_step`` windows); at least one record
    #: by default
    records: list[dict[str, Any]] = Field(default_factory=list)
    #: expectations that must match NO record (e.g. no seal alarm on an empty scene)
    absent: list[dict[str, Any]] = Field(default_factory=list)
    #: exact numbers of distinct records (by seq), e.g. ``{match: {alarm: secretly_running}, equals: 0}``
    count: list[Count] = Field(default_factory=list)
    #: records that must appear in this order of seq (e.g. raised → acknowledged → closed)
    sequence: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("records", "absent", "sequence")
    @classmethod
    def _specs(cls, value: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        # records/absent are expectations (run facts resolved); their windows are checked
        # against the steps by the scenario (_expectations_are_meaningful)
        for i, spec in enumerate(value):
            check_spec(spec, f"entry {i + 1}", facts=info.field_name != "sequence")
        return value


class Scenario(StrictModel):
    name: str
    description: str = ""
    #: put the agent's buffer on a tmpfs of this size (a full disk that is real)
    buffer_tmpfs: ByteSize | None = None
    max_bytes: ByteSize | None = None
    #: run a real UPS (upsd + dummy-ups) on the site and configure the agent's ``power:`` for it
    ups: bool = False
    #: what the site's paperwork says (rules.site.sections[0].state of the agent's config)
    declared: Literal["operating", "stopped", "suspended", "sealed"] = "operating"
    #: the simulated plant's mode before the agent starts (so the first readings are already that mode)
    site_mode: SiteModeName = "operating"
    #: changes to the generated agent config, dotted path → value (hil/overlay.py), in order
    config: dict[str, Any] = Field(default_factory=dict)
    #: give the agent the site's cameras (true), none (false), or only these: a scenario about
    #: something else leaves them out (camera workers and their person detector are most of the
    #: rig's CPU and of the agent's start time)
    cameras: bool | list[Literal["shaft", "seal"]] = True
    #: the clock of the agent's first start (``start_agent`` steps set their own)
    clock: Literal["synced", "unsynced", "kernel"] = "kernel"
    steps: list[Step]
    expect: Expect = Expect()

    @model_validator(mode="after")
    def _ups_steps_need_a_ups(self) -> Scenario:
        if not self.ups and any(s.action == "ups" for s in self.steps):
            raise ValueError("'ups: true' on the scenario: its steps flip the UPS, so the site must run one")
        if not self.buffer_tmpfs and any(s.action in ("fill_disk", "free_disk") for s in self.steps):
            raise ValueError("'buffer_tmpfs: SIZE' on the scenario: fill_disk fills the buffer's own filesystem")
        return self

    @model_validator(mode="after")
    def _expectations_are_meaningful(self) -> Scenario:
        n = len(self.steps)
        for i, step in enumerate(self.steps, start=1):
            if isinstance(step, WaitFor):
                validate(step.record, n, f"step {i} (wait_for): record")
        for name in ("records", "absent"):
            for j, want in enumerate(getattr(self.expect, name), start=1):
                validate(want, n, f"expect.{name}[{j}]")
        return self


def load_scenario(path: Path) -> Scenario:
    """Validate a scenario file; errors name the step and its line."""
    tree = parse_yaml(path.read_text(encoding="utf-8"), str(path))

    def label(loc: tuple[Any, ...], key: str) -> str:
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            step = plain(tree)["steps"][loc[1]]
            action = step.get("action", "?") if isinstance(step, dict) else "?"
            return f"step {loc[1] + 1} ({action}): {key}"
        return key

    return validate_tree(Scenario, tree, str(path), label)
