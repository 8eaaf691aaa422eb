"""Fault scenarios as YAML: steps and expectations, validated before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from config.types import ByteSize, StrictModel
from config.yamlio import parse_yaml, plain, validate_tree


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
    mode: Literal["normal", "covered", "frozen", "blurred", "down"]


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


SiteModeName = Literal["operating", "stopped", "secretly_running", "pumps_and_fans"]


class SiteMode(StrictModel):
    action: Literal["site_mode"]
    mode: SiteModeName


class WaitDrained(StrictModel):
    action: Literal["wait_drained"]
    timeout: float = Field(default=60, gt=0)


Step = Annotated[Wait | Proxy | Camera | Device | SerialNoise | KillAgent | StartAgent | SiteMode | WaitDrained,
                 Field(discriminator="action")]


class Expect(StrictModel):
    all_delivered: bool = False
    ordered_per_source: bool = False
    chain_intact: bool = False
    agent_alive: bool = True
    #: each entry: kind, optional source, and payload keys that must match in at least one record
    records: list[dict[str, Any]] = Field(default_factory=list)
    #: payload keys that must match in NO record (e.g. no seal alarm on an empty scene)
    absent: list[dict[str, Any]] = Field(default_factory=list)


class Scenario(StrictModel):
    name: str
    description: str = ""
    #: put the agent's buffer on a tmpfs of this size (a full disk that is real)
    buffer_tmpfs: ByteSize | None = None
    max_bytes: ByteSize | None = None
    #: what the site's paperwork says (rules.site.sections[0].state of the agent's config)
    declared: Literal["operating", "stopped", "suspended", "sealed"] = "operating"
    #: the simulated plant's mode before the agent starts (so the first readings are already that mode)
    site_mode: SiteModeName = "operating"
    steps: list[Step]
    expect: Expect = Expect()


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
