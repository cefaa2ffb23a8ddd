"""Offline language identification for queries that come without a language code.

SONAR's encoder needs the code (it changes the embedding), and users type queries without
one. py3langid ships its model inside its PyPI package (97 languages, ISO 639-1), so this
runs with no download; its codes map to FLORES-200 through the alias table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from encoders.languages import iso1_to_flores
from vidsonar.errors import MissingDependencyError


@dataclass(frozen=True)
class DetectedLanguage:
    code: str  # FLORES-200
    confidence: float  # probability in [0, 1], normalized over the candidate languages


@lru_cache(maxsize=1)
def _identifier():
    try:
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise MissingDependencyError("py3langid", "detecting the query language") from exc
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect_language(text: str, supported: tuple[str, ...] | None = None) -> DetectedLanguage | None:
    """The most probable supported language of ``text``; None if nothing supported matches."""
    for iso1, prob in _identifier().rank(text):
        code = iso1_to_flores(iso1)
        if code and (supported is None or code in supported):
            return DetectedLanguage(code, round(float(prob), 4))
    return None
