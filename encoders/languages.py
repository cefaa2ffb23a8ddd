"""Language codes: FLORES-200 (``eng_Latn``), as SONAR and NLLB use them.

A concept space declares which codes it supports; ``resolve_language`` validates a code
against that list and answers an unknown one with close matches. Aliases are accepted when
they name exactly one supported code: ISO 639-1 (``fr``), bare ISO 639-3 (``fra``), and
English names (``French``; ``Chinese`` means ``zho_Hans``, the code ``zh`` stands for).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources

from vidsonar.errors import UnknownLanguageError


@lru_cache(maxsize=1)
def _table() -> list[tuple[str, str, bool, tuple[str, ...]]]:
    text = resources.files("encoders").joinpath("data/languages.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, iso1, e5, names = line.split("\t")
            rows.append((code, iso1, e5 == "1", tuple(n for n in names.split(";") if n)))
    return rows


def flores200() -> tuple[str, ...]:
    """The 202 FLORES-200 codes of NLLB-200, which SONAR's text encoder covers."""
    return tuple(row[0] for row in _table())


def e5_languages() -> tuple[str, ...]:
    """FLORES codes of the XLM-R languages that multilingual-e5 was trained on."""
    return tuple(row[0] for row in _table() if row[2])


def english_only() -> tuple[str, ...]:
    """For text towers trained (almost) only on English, such as PE-Core's."""
    return ("eng_Latn",)


def language_name(code: str) -> str:
    """English name of a FLORES-200 code (``fra_Latn`` -> ``French``), or the code itself."""
    return next((row[3][0] for row in _table() if row[0] == code and row[3]), code)


def iso1_to_flores(iso1: str) -> str | None:
    return next((row[0] for row in _table() if row[1] == iso1), None)


def language_set(name: str) -> tuple[str, ...]:
    sets = {"flores200": flores200, "e5": e5_languages, "english": english_only}
    if name not in sets:
        raise ValueError(f"unknown language set {name!r}; known: {', '.join(sets)}")
    return sets[name]()


def resolve_language(code: str, supported: tuple[str, ...] | frozenset[str],
                     space: str | None = None) -> str:
    """The FLORES-200 code for ``code`` if ``supported`` has it, else UnknownLanguageError."""
    raw = (code or "").strip()
    if raw in supported:
        return raw
    aliases = {iso1: c for c, iso1, _, _ in _table() if iso1 and c in supported}
    if raw.lower() in aliases:
        return aliases[raw.lower()]
    by_name = [c for c, iso1, _, names in _table()
               if c in supported and raw.lower() in (n.lower() for n in names)]
    if len(by_name) > 1:  # "Chinese": the code its ISO 639-1 alias names
        by_name = [c for c in by_name if c in aliases.values()] or by_name
    if len(by_name) == 1:
        return by_name[0]
    by_prefix = [c for c in supported if c.split("_")[0] == raw.lower()]
    if len(by_prefix) == 1:
        return by_prefix[0]
    lowered = {c.lower(): c for c in supported}
    if raw.lower() in lowered:
        return lowered[raw.lower()]
    names = {n.lower(): c for c, _, _, ns in _table() if c in supported for n in ns}
    close = by_prefix or difflib.get_close_matches(raw, list(supported), n=3, cutoff=0.5)
    close = close or sorted({names[n] for n in difflib.get_close_matches(raw.lower(), list(names), n=3,
                                                                         cutoff=0.7)})
    raise UnknownLanguageError(code, sorted(close), space)
