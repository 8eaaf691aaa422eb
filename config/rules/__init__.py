"""Settings of the site rules (``rules:``); one module per rule family."""

from __future__ import annotations

from config.rules.alarms import AlarmRules
from config.rules.headcount import HeadcountRules
from config.rules.hotwork import HotworkRules
from config.rules.site import SiteRules
from config.types import StrictModel


class RulesSettings(StrictModel):
    """``rules:`` — every part is optional; an absent part runs nothing."""

    headcount: HeadcountRules = HeadcountRules()
    site: SiteRules = SiteRules()
    hotwork: HotworkRules = HotworkRules()
    alarms: AlarmRules = AlarmRules()


__all__ = ["AlarmRules", "HeadcountRules", "HotworkRules", "RulesSettings", "SiteRules"]
