"""One message-catalogue mechanism for the technician's words in Chinese and English.

A catalogue maps a message id to its text per language, with ``{placeholders}``. The page
(agent/web/i18n.py) renders by id. The CLI also has to show words that were produced in
English deep inside the loader or a driver (and go into records and logs in English, as the
platform expects): ``Localizer`` turns such an English text back into its id and arguments by
matching the English templates, and renders it in the technician's language. Text that
matches no template is shown as it is (English), never dropped.

Language choice for the CLI: ``--lang``, else ``HEADFRAME_LANG``, else the locale (``LC_ALL``,
``LC_MESSAGES``, ``LANG`` starting with ``zh`` → Chinese), else English.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
Catalogue = Mapping[str, Mapping[Lang, str]]

_current: Lang = "en"


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template uses (the catalogue test checks both languages agree)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def render(catalogue: Catalogue, key: str, lang: Lang, **args: object) -> str:
    msg = catalogue[key][lang]
    return msg.format(**args) if args else msg


def pick(flag: str | None, environ: Mapping[str, str]) -> Lang:
    """The CLI's language: flag, then HEADFRAME_LANG, then the locale, then English."""
    for value in (flag, environ.get("HEADFRAME_LANG")):
        if value:
            low = value.strip().lower()
            if low.startswith("zh"):
                return "zh"
            if low.startswith("en"):
                return "en"
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(var)
        if value:  # the first one set decides, as for the C library
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_current(lang: Lang) -> None:
    """Set once by the CLI entry point; the daemon never sets it (its logs stay English)."""
    global _current
    _current = lang


def current() -> Lang:
    return _current


def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


class Localizer:
    """Renders English texts built from ``catalogue``'s English templates in another language."""

    def __init__(self, *catalogues: Catalogue) -> None:
        self.catalogue: dict[str, Mapping[Lang, str]] = {}
        for cat in catalogues:
            self.catalogue.update(cat)
        # longest templates first: a specific message wins over a general one
        order: Iterable[str] = sorted(self.catalogue, key=lambda k: -len(self.catalogue[k]["en"]))
        self._patterns = [(key, _pattern(self.catalogue[key]["en"])) for key in order]

    def match(self, text: str) -> tuple[str, dict[str, str]] | None:
        for key, pattern in self._patterns:
            m = pattern.fullmatch(text)
            if m:
                return key, m.groupdict()
        return None

    def __call__(self, text: str, lang: Lang | None = None, depth: int = 2) -> str:
        lang = lang or _current
        if lang == "en" or not text:
            return text
        found = self.match(text)
        if found is None:
            return text
        key, args = found
        if depth > 0:
            args = {k: self(v, lang, depth - 1) for k, v in args.items()}
        return self.catalogue[key][lang].format(**args)
