"""Settings of the alarms rules (placeholder until the rule lands)."""

from __future__ import annotations

from config.types import StrictModel


class AlarmRules(StrictModel):
    """Nothing configured yet."""
