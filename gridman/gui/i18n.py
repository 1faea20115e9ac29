"""User-visible text: Chinese source strings through one ``tr()``; English from a catalog.

Chinese (zh_CN) is the default. The English catalog is ``translations/en.json`` (source → text).
A test (tests/gui/test_i18n.py) parses every module of ``gridman.gui`` and fails when a Chinese
string literal is not the argument of ``tr()`` or when a ``tr()`` string is missing from the
catalog, so no untranslated text reaches an English user. Enumeration labels come from
``gridman.core.enums.label`` and error messages from ``GridmanError.text(lang)``, which carry
both languages already. Stored times are shown through ``local_time`` (one format, the local zone).

The current language is process-wide UI state (chosen at sign-in / in Settings), not data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

CATALOG_PATH = Path(__file__).parent / "translations" / "en.json"
LANGUAGES = ("zh_CN", "en")

_lang = "zh_CN"


@lru_cache(maxsize=1)
def catalog() -> dict[str, str]:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


def set_language(lang: str) -> None:
    global _lang
    _lang = "en" if str(lang).lower().startswith("en") else "zh_CN"


def language() -> str:
    return _lang


def is_english() -> bool:
    return _lang == "en"


def tr(source: str) -> str:
    """The text for ``source`` (a Chinese string) in the current language."""
    if _lang == "en":
        return catalog().get(source, source)
    return source


def pick(zh: str, en: str) -> str:
    """Choose between a pair of texts that already carry both languages (column headers…)."""
    return en if _lang == "en" else zh


def N_(source: str) -> str:  # noqa: N802 — gettext's conventional name
    """Mark a string for translation where it is defined (tables of labels); translate it with
    ``tr()`` where it is shown."""
    return source


def local_time(dt: datetime | None) -> str:
    """A stored (naive UTC) time as the user reads it: in the computer's time zone, to the minute."""
    return "—" if dt is None else dt.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")
