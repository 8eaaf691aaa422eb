"""Configuration schema and loader. Imports nothing from the other Headframe packages."""

from config.errors import ConfigError, ConfigProblem
from config.loader import load_or_report, load_settings, load_settings_text, locate, parse_yaml
from config.schema import Settings

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Settings",
    "load_or_report",
    "load_settings",
    "load_settings_text",
    "locate",
    "parse_yaml",
]
