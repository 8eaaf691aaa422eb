"""Settings of the site rules (placeholder until the rule lands)."""

from __future__ import annotations

from config.types import StrictModel


class SiteRules(StrictModel):
    """Nothing configured yet."""
