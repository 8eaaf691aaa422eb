"""Reads mains/battery state from a Network UPS Tools daemon through ``aionut``.

upsd speaks a line protocol on TCP 3493; aionut keeps one connection and reconnects on the
next call after any failure, so a restarted upsd is picked up without restarting the agent.
Every failure becomes a PowerSourceError whose message names the cause and the setting to check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from aionut import (
    AIONUTClient,
    NUTCommandError,
    NUTConnectionClosedError,
    NUTError,
    NUTLoginError,
    NUTOSError,
    NUTProtocolError,
    NUTTimeoutError,
    NUTValueError,
)

from agent.power.reading import PowerReading, PowerSourceError, number, parse_ups_status
from config.power import NutSettings

# aionut logs every line it sends at DEBUG, the PASSWORD command included: keep it above DEBUG
# so that `logging.level: DEBUG` never puts the UPS password into the journal.
logging.getLogger("aionut").setLevel(logging.INFO)

_COMMAND_HINTS = {
    "UNKNOWN-UPS": "upsd knows no UPS of that name: check power.nut.ups against upsd's ups.conf",
    "DATA-STALE": "the UPS driver stopped updating (cable, USB or driver problem on the UPS side)",
    "DRIVER-NOT-CONNECTED": "upsd runs but its UPS driver does not: start the NUT driver",
    "ACCESS-DENIED": "upsd refused access: check power.nut.username / password_file and upsd.users",
}


def _short(text: str, limit: int = 120) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NutSource:
    """One UPS on one upsd; ``read()`` returns a PowerReading or raises PowerSourceError."""

    kind = "nut"

    def __init__(self, settings: NutSettings) -> None:
        self.settings = settings
        self.where = f"upsd at {settings.host}:{settings.port}"
        self._client: AIONUTClient | None = None

    def _connect(self) -> AIONUTClient:
        """The client, made on first use (and after close): the password file is read here, never logged."""
        if self._client is None:
            s = self.settings
            password = Path(s.password_file).read_text().strip() if s.password_file is not None else None
            self._client = AIONUTClient(s.host, s.port, s.username, password, timeout=s.timeout, persistent=True)
        return self._client

    @property
    def name(self) -> str:
        return self.settings.ups

    async def read(self) -> PowerReading:
        ups = self.settings.ups
        try:
            client = self._connect()
        except OSError as exc:
            raise PowerSourceError(f"cannot read power.nut.password_file ({exc.strerror or exc})") from None
        try:
            values = await client.list_vars(ups)
        except NUTLoginError as exc:
            raise PowerSourceError(f"{self.where}: {_COMMAND_HINTS['ACCESS-DENIED']} ({_short(str(exc))})") from None
        except NUTCommandError as exc:
            hint = next((h for code, h in _COMMAND_HINTS.items() if code in str(exc)), "upsd answered an error")
            raise PowerSourceError(f"{self.where}, UPS {ups!r}: {hint} ({_short(str(exc))})") from None
        except NUTTimeoutError:
            raise PowerSourceError(f"{self.where} did not answer within {self.settings.timeout:g}s") from None
        except (NUTOSError, NUTConnectionClosedError, ConnectionError, OSError) as exc:
            raise PowerSourceError(
                f"{self.where} is not reachable ({_short(str(exc)) or type(exc).__name__}): "
                "is upsd running and listening there? (power.nut.host/port)"
            ) from None
        except (NUTProtocolError, NUTValueError, ValueError, asyncio.LimitOverrunError) as exc:
            raise PowerSourceError(
                f"{self.where} answered something that is not the NUT protocol "
                f"({_short(str(exc))}); is power.nut.port really upsd?"
            ) from None
        except NUTError as exc:
            raise PowerSourceError(f"{self.where}: {type(exc).__name__}: {_short(str(exc))}") from None
        status = values.get("ups.status")
        if status is None:
            raise PowerSourceError(
                f"{self.where}, UPS {ups!r}: no ups.status in the answer (the driver has not read the UPS yet?)"
            )
        reading = parse_ups_status(status)
        return dataclasses.replace(
            reading, charge=number(values.get("battery.charge")), runtime_s=number(values.get("battery.runtime"))
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.shutdown()
            self._client = None
