"""Language codes: FLORES-200 (``eng_Latn``), as SONAR and NLLB use them.

A concept space declares which codes it supports; ``resolve_language`` validates a code
against that list and answers an unknown one with close matches. Two-letter ISO 639-1
codes (``fr``) and bare ISO 639-3 codes (``fra``) are accepted as aliases when they name
exactly one supported code.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources

from vidsonar.errors import UnknownLanguageError


@lru_cache(maxsize=1)
def _table() -> list[tuple[str, str, bool]]:
    text = resources.files("encoders").joinpath("data/languages.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, iso1, e5 = line.split("\t")
            rows.append((code, iso1, e5 == "1"))
    return rows


def flores200() -> tuple[str, ...]:
    """The 202 FLORES-200 codes of NLLB-200, which SONAR's text encoder covers."""
    return tuple(code for code, _, _ in _table())


def e5_languages() -> tuple[str, ...]:
    """FLORES codes of the XLM-R languages that multilingual-e5 was trained on."""
    return tuple(code for code, _, e5 in _table() if e5)


def language_set(name: str) -> tuple[str, ...]:
    sets = {"flores200": flores200, "e5": e5_languages}
    if name not in sets:
        raise ValueError(f"unknown language set {name!r}; known: {', '.join(sets)}")
    return sets[name]()


def resolve_language(code: str, supported: tuple[str, ...] | frozenset[str],
                     space: str | None = None) -> str:
    """The FLORES-200 code for ``code`` if ``supported`` has it, else UnknownLanguageError."""
    raw = (code or "").strip()
    if raw in supported:
        return raw
    aliases = {iso1: c for c, iso1, _ in _table() if iso1 and c in supported}
    if raw.lower() in aliases:
        return aliases[raw.lower()]
    by_prefix = [c for c in supported if c.split("_")[0] == raw.lower()]
    if len(by_prefix) == 1:
        return by_prefix[0]
    lowered = {c.lower(): c for c in supported}
    if raw.lower() in lowered:
        return lowered[raw.lower()]
    close = by_prefix or difflib.get_close_matches(raw, list(supported), n=3, cutoff=0.5)
    raise UnknownLanguageError(code, sorted(close), space)
