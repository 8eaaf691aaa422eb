"""The root of the configuration file."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from config import drivers as drivers_cfg
from config import power as power_cfg
from config import vision as vision_cfg
from config.mapping import cross_check as mapping_cross_check
from config.metrics import MetricsSettings
from config.rules import RulesSettings
from config.rules import hotwork as hotwork_cfg
from config.rules import site as site_rules_cfg
from config.rules.headcount import cross_check as headcount_cross_check
from config.spine import (
    BufferSettings,
    ContinuitySettings,
    ControlSettings,
    GatewaySettings,
    HealthSettings,
    LoggingSettings,
    UplinkSettings,
)
from config.types import StrictModel
from config.web import WebSettings

#: Sections a reload does not apply: they take effect at the next start (the buffer file, the
#: gateway's identity, the rules' saved state, the local sockets and the page itself).
RESTART_ONLY_SECTIONS = ("buffer", "gateway", "rules", "control", "web", "metrics")


class Settings(StrictModel):
    """Everything the agent needs; one YAML file validates into this."""

    gateway: GatewaySettings
    buffer: BufferSettings = BufferSettings()
    uplink: UplinkSettings = UplinkSettings()
    health: HealthSettings = HealthSettings()
    logging: LoggingSettings = LoggingSettings()
    continuity: ContinuitySettings = ContinuitySettings()
    control: ControlSettings = ControlSettings()
    web: WebSettings = WebSettings()
    metrics: MetricsSettings = MetricsSettings()
    power: power_cfg.PowerSettings = power_cfg.PowerSettings()
    buses: list[drivers_cfg.BusSettings] = Field(default_factory=list)
    devices: list[drivers_cfg.DeviceSettings] = Field(default_factory=list)
    operating_state: drivers_cfg.OperatingStateSettings = drivers_cfg.OperatingStateSettings()
    cameras: list[vision_cfg.CameraSettings] = Field(default_factory=list)
    shafts: list[vision_cfg.ShaftSettings] = Field(default_factory=list)
    rules: RulesSettings = RulesSettings()

    def cross_problems(self, profiles: Mapping[str, drivers_cfg.Profile]) -> list[drivers_cfg.Problem]:
        """Problems that no single field can see (e.g. two devices fighting over one port).

        ``profiles`` come from the loader (``config.profiles``), which this module does not import.
        """
        return (
            drivers_cfg.cross_check(self.buses, self.devices, self.operating_state, profiles)
            + vision_cfg.cross_check(self.cameras, self.shafts)
            + power_cfg.cross_check(self.power)
            + headcount_cross_check(
                self.rules.headcount,
                [s.name for s in self.shafts],
                site_rules_cfg.point_names(self.devices, profiles),
                {c.id for c in self.cameras},
                f"{self.uplink.topic_prefix}/{self.gateway.site}/{self.gateway.id}/",
            )
            + site_rules_cfg.cross_check(self.rules.site, self.devices, self.cameras, profiles)
            + hotwork_cfg.cross_check(self.rules.hotwork, self.cameras)
            + mapping_cross_check(self.uplink.mapping)
        )
