"""Builds the record producers (drivers, vision) from the config, isolating their failures."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any, Protocol

from buffer.sink import RecordSink
from config.schema import Settings

log = logging.getLogger("headframe.agent")

#: Producer packages, each exposing ``<module>.build(settings, sink) -> Producer | None``, and
#: whether a config asks for it: one that is not configured is not
#: even imported (vision's multiprocessing and pickle machinery would stay in every agent's RSS).
PRODUCER_MODULES: dict[str, Callable[[Settings], bool]] = {
    "drivers.runtime": lambda s: bool(s.devices),
    "vision.runtime": lambda s: any(c.enabled for c in s.cameras),
}


class Producer(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


def build_producers(settings: Settings, sink: RecordSink) -> tuple[list[Producer], dict[str, str]]:
    """Producers that are configured, plus errors of those that could not be built.

    ``HEADFRAME_EXTRA_PRODUCERS`` (comma-separated modules) adds producers for tests and the
    HIL rig, e.g. a synthetic load generator. A producer that fails to build (missing model
    file, bad port) is reported in health and the log; it never stops the others.
    """
    producers: list[Producer] = []
    errors: dict[str, str] = {}
    extra = [m for m in os.environ.get("HEADFRAME_EXTRA_PRODUCERS", "").split(",") if m]
    wanted = [name for name, configured in PRODUCER_MODULES.items() if configured(settings)]
    for module_name in (*wanted, *extra):
        short = module_name.split(".")[0]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        try:
            producer = module.build(settings, sink)
        except Exception as exc:
            log.exception("%s: could not start (%s); the rest of the agent runs on", short, exc)
            errors[short] = f"{type(exc).__name__}: {exc}"
            continue
        if producer is not None:
            producers.append(producer)
    return producers, errors
