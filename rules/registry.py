"""Which rules run, in which order: ``build(settings) -> list[Rule]``.

Each rule family adds ONE entry to ``FAMILIES``: ``"module:function"``, where the function is
``(settings: Settings) -> list[Rule]`` (an empty list when its part of ``rules:`` is absent).
The order is the order the engine runs them in, and a rule sees the outputs of the rules
before it in the same commit: the alarm manager stays LAST so it sees every alarm.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable

from config.schema import Settings
from rules.base import Rule

log = logging.getLogger("headframe.rules")

Builder = Callable[[Settings], list[Rule]]

#: Rule families in running order (one line each; keep the blank comment lines between them).
FAMILIES: tuple[str, ...] = (
    "rules.headcount:build",
    #
    "rules.site:build",
    #
    "rules.hotwork:build",
    #
    "rules.alarms:build",  # the alarm manager: always last
)

#: The family that must run last (it sees every alarm raised in the same commit).
LAST = "rules.alarms"


def _load(entry: str) -> Builder:
    module_name, _, func = entry.partition(":")
    builder: Builder = getattr(importlib.import_module(module_name), func or "build")
    return builder


def entries() -> list[str]:
    """``FAMILIES`` plus the TEST HOOK ``HEADFRAME_EXTRA_RULES`` (comma-separated modules, each
    with ``build(settings) -> list[Rule]``), which run before the alarm manager. For tests and
    the HIL rig only: it loads a test rule into a real agent process."""
    extra = [m.strip() for m in os.environ.get("HEADFRAME_EXTRA_RULES", "").split(",") if m.strip()]
    if extra:
        log.warning("rules: TEST HOOK HEADFRAME_EXTRA_RULES loads %s", ", ".join(extra))
    families = list(FAMILIES)
    last = [e for e in families if e.split(":")[0] == LAST]
    return [e for e in families if e not in last] + extra + last


def build(settings: Settings, errors: dict[str, str] | None = None) -> list[Rule]:
    """The rules of every family, in order. A family whose builder raises is logged (and put in
    ``errors``) and left out; the others run. A missing module is an error, never skipped."""
    rules: list[Rule] = []
    for entry in entries():
        builder = _load(entry)
        try:
            rules.extend(builder(settings))
        except Exception as exc:
            log.exception("rules: %s could not be built (%s); the other rules run", entry, exc)
            if errors is not None:
                errors[entry] = f"{type(exc).__name__}: {exc}"
    return rules
