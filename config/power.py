"""Settings of the mains/UPS monitor (``power:``): where the gateway learns that mains is gone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from config.types import ConfigPath, Duration, StrictModel


class NutSettings(StrictModel):
    """A Network UPS Tools daemon (``upsd``), usually on the gateway itself."""

    host: str = "127.0.0.1"
    port: int = Field(default=3493, ge=1, le=65535)
    #: The UPS name as upsd knows it (``[name]`` in ups.conf).
    ups: str = Field(default="ups", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    username: str | None = None
    password_file: ConfigPath | None = None
    timeout: Duration = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _pair(self) -> NutSettings:
        if self.password_file is not None and self.username is None:
            raise ValueError("'username' together with 'password_file'")
        return self


class GpioSettings(StrictModel):
    """A "power good" line of a UPS HAT, read as a file whose content is 0 or 1."""

    #: e.g. /sys/class/gpio/gpio17/value (exported by a udev rule or the HAT's overlay).
    path: ConfigPath
    #: The level that means "mains present".
    active: Literal[0, 1] = 1


class PowerSettings(StrictModel):
    """Mains/UPS monitoring: ``none`` (default), ``nut`` or ``gpio``."""

    source: Literal["none", "nut", "gpio"] = "none"
    nut: NutSettings | None = None
    gpio: GpioSettings | None = None
    poll: Duration = Field(default=2.0, ge=0.1, le=60)
    #: Back-off bounds while the UPS daemon or the input cannot be read.
    retry_min: Duration = Field(default=1.0, ge=0.05)
    retry_max: Duration = Field(default=30.0, ge=0.05)
    #: Treat an outage this long as "power failing" (flush, clean stop) even without a low-battery
    #: flag; the only way to stop in time with a power-good line that knows no charge.
    stop_after: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _source_has_settings(self) -> PowerSettings:
        if self.source == "gpio" and self.gpio is None:
            raise ValueError("a 'gpio:' section with 'path' when source is gpio")
        if self.retry_max < self.retry_min:
            raise ValueError("retry_max at least retry_min")
        return self

    @property
    def nut_or_default(self) -> NutSettings:
        return self.nut or NutSettings()


def cross_check(power: PowerSettings) -> list[tuple[tuple[str | int, ...], str, str]]:
    """The NUT password file must be readable now (not when mains fails at 3 a.m.)."""
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    if power.source == "nut" and power.nut is not None and power.nut.password_file is not None:
        try:
            power.nut.password_file.read_bytes()
        except OSError as exc:
            problems.append(
                (("power", "nut", "password_file"), f"{power.nut.password_file} ({exc.strerror or exc})", "a readable file")
            )
    return problems
