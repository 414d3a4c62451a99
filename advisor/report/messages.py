"""The message catalogue: every user-facing report string, in English and Chinese.

Catalogues live in `messages/<language>.json` plus one file per check module in
`messages/<language>/<module>.json` (so that each check owns its strings). A value is a `str.format`
template or a list of them (suggestion lists). A key missing from a translation falls back to English.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ..options import LANGUAGES

_DIR = Path(__file__).with_name("messages")


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _catalogue(language: str) -> dict[str, Any]:
    strings = _read(_DIR / f"{language}.json")
    for part in sorted((_DIR / language).glob("*.json")):
        fragment = _read(part)
        clash = sorted(set(fragment) & set(strings))
        if clash:
            raise ValueError(f"{part}: message keys defined twice: {', '.join(clash)}")
        strings.update(fragment)
    return strings


class Messages:
    """`t(key, **values)` -> the text of `key` in the chosen language."""

    def __init__(self, language: str = "en") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")
        self.language = language
        self._strings = _catalogue(language)
        self._fallback = _catalogue("en")

    def _raw(self, key: str) -> Any:
        if key in self._strings:
            return self._strings[key]
        return self._fallback[key]  # KeyError: a key used in code but missing from en.json is a bug

    def t(self, key: str, **values: Any) -> str:
        template = self._raw(key)
        if not isinstance(template, str):
            raise TypeError(f"message {key!r} is a list; use t_list")
        return template.format(**values)

    def t_list(self, key: str, **values: Any) -> list[str]:
        templates = self._raw(key)
        if isinstance(templates, str):
            templates = [templates]
        return [item.format(**values) for item in templates]

    def has(self, key: str) -> bool:
        return key in self._fallback


def catalogue_keys(language: str) -> set[str]:
    return set(_catalogue(language))
