"""The language a query was searched as is reported with its source, on every kind of space."""

from __future__ import annotations

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize
from search.searcher import Searcher


class AnyLanguageSpace(ConceptSpace):
    """Like e5: the encoder ignores the code (deterministic fixed vectors here)."""

    needs_language = False

    def _encode_text(self, texts, lang, query):
        return l2_normalize(np.ones((len(texts), 4), np.float32))

    def encode_snippets(self, frames):
        return l2_normalize(np.ones((len(frames), 4), np.float32))


def _searcher(tmp_path, needs_language: bool) -> Searcher:
    space = AnyLanguageSpace(SpaceConfig("any-test", "none", 4, "e5"))
    space.needs_language = needs_language
    return Searcher(None, space, None, tmp_path)


def test_a_space_that_needs_no_code_still_reports_the_language_and_its_source(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSONAR_DEFAULT_LANG", "eng_Latn")
    for needs in (False, True):
        s = _searcher(tmp_path, needs)
        lang, source, detected = s._language("Une femme traverse la rue sous la pluie avec un parapluie", None)
        assert (lang, source) == ("fra_Latn", "detected") and detected["code"] == "fra_Latn"
        assert s._language("a cat", "de") == ("deu_Latn", "given", None)
        lang, source, _ = s._language("xq", None)  # nothing to detect from
        assert (lang, source) == ("eng_Latn", "default")
