"""Settings of the headcount rules (placeholder until the rule lands)."""

from __future__ import annotations

from config.types import StrictModel


class HeadcountRules(StrictModel):
    """Nothing configured yet."""
