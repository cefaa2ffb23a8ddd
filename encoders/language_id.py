"""Offline language identification for queries that come without a language code.

SONAR's encoder needs the code (it changes the embedding), and users type queries without
one, often one to three words. Two identifiers ship their models inside their PyPI
packages, so neither downloads anything:

- ``lingua-low`` / ``lingua``: lingua-language-detector (75 languages, Rust), built once,
  lazily, for the space's languages only, in low-accuracy mode (trigrams) or high (1- to
  5-grams, loaded per language as queries need them);
- ``py3langid``: a naive-Bayes byte-n-gram model over 97 languages ("cat" comes out Romanian).

``benchmarks/language_id.py`` measures them on ``encoders/data/short_queries.tsv`` (180
queries of 1-3 words, 15 languages; results in benchmarks/results/language_id.json). High
accuracy is right most often (0.83 top-1) but grows to ~1 GB resident and loads for minutes
under load as queries in new languages arrive; low accuracy matches py3langid's top-1
(0.71 vs 0.72), gives the searcher the right language more often once low-confidence
detections fall back to the default (0.72 vs 0.62; it is confidently wrong more often, 0.16
vs 0.07, but wrong in all 0.28 vs 0.38), and costs less memory (~74 vs ~92 MiB) with no
multi-second model load at build. So ``DEFAULT_BACKEND`` is ``lingua-low``;
$VIDSONAR_LANGUAGE_ID picks another. Codes map to FLORES-200 through the alias table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from encoders.languages import iso1_to_flores
from vidsonar.errors import MissingDependencyError

BACKENDS = ("lingua", "lingua-low", "py3langid")
DEFAULT_BACKEND = "lingua-low"


@dataclass(frozen=True)
class DetectedLanguage:
    code: str  # FLORES-200
    confidence: float  # probability in [0, 1] (py3langid: over its 97 languages; lingua: over the space's)


class Py3LangId:
    """py3langid over its 97 languages; the most probable one the space supports wins."""

    def __init__(self, supported: tuple[str, ...] | None = None):
        try:
            from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
        except ImportError as exc:
            raise MissingDependencyError("py3langid", "detecting the query language") from exc
        self.model = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        self.supported = supported

    def detect(self, text: str) -> DetectedLanguage | None:
        for iso1, prob in self.model.rank(text):
            code = iso1_to_flores(iso1)
            if code and (self.supported is None or code in self.supported):
                return DetectedLanguage(code, round(float(prob), 4))
        return None


class Lingua:
    """lingua-language-detector for the space's languages (its models load on first use)."""

    def __init__(self, supported: tuple[str, ...] | None = None, low_accuracy: bool = False):
        try:
            from lingua import Language, LanguageDetectorBuilder
        except ImportError as exc:
            raise MissingDependencyError("lingua-language-detector", "detecting the query language") from exc
        self.codes = {}
        for lang in Language.all():
            code = iso1_to_flores(lang.iso_code_639_1.name.lower())
            if code and (supported is None or code in supported):
                self.codes[lang] = code
        if len(self.codes) < 2:  # lingua needs two candidates; one language needs no detection
            self.detector = None
            return
        builder = LanguageDetectorBuilder.from_languages(*self.codes)
        self.detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def detect(self, text: str) -> DetectedLanguage | None:
        if self.detector is None:
            return DetectedLanguage(next(iter(self.codes.values())), 1.0) if self.codes else None
        values = self.detector.compute_language_confidence_values(text)
        if not values or values[0].value <= 0:
            return None
        return DetectedLanguage(self.codes[values[0].language], round(float(values[0].value), 4))


def make_detector(backend: str, supported: tuple[str, ...] | None = None):
    """A detector object with ``detect(text)``; ``backend`` is one of BACKENDS."""
    if backend == "py3langid":
        return Py3LangId(supported)
    if backend in ("lingua", "lingua-low"):
        return Lingua(supported, low_accuracy=backend == "lingua-low")
    raise ValueError(f"unknown language identifier {backend!r}; known: {', '.join(BACKENDS)}")


@lru_cache(maxsize=8)
def _detector(backend: str, supported: tuple[str, ...] | None):
    return make_detector(backend, supported)


def detect_language(text: str, supported: tuple[str, ...] | None = None) -> DetectedLanguage | None:
    """The most probable supported language of ``text``; None if nothing supported matches.

    The identifier is $VIDSONAR_LANGUAGE_ID if set (one of BACKENDS), else DEFAULT_BACKEND;
    it is built once per (identifier, language set), on the first query.
    """
    backend = os.environ.get("VIDSONAR_LANGUAGE_ID") or DEFAULT_BACKEND
    return _detector(backend, tuple(supported) if supported is not None else None).detect(text)
