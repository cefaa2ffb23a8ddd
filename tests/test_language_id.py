"""Query language identification: the shipped short-query set, and the identifiers behind it."""

from __future__ import annotations

import pytest

from benchmarks.language_id import short_queries
from encoders.language_id import DEFAULT_BACKEND, Lingua, Py3LangId, detect_language, make_detector
from encoders.languages import e5_languages


def test_the_short_query_set_is_labelled_with_supported_codes():
    rows = short_queries()
    langs = {lang for lang, _, _ in rows}
    assert len(langs) >= 10 and set(langs) <= set(e5_languages())
    assert {w for _, w, _ in rows} == {1, 2, 3}
    for lang in langs:  # every language has queries of each length
        assert {w for l, w, _ in rows if l == lang} == {1, 2, 3}, lang


def test_lingua_is_built_for_the_space_languages_only():
    det = Lingua(("eng_Latn", "fra_Latn", "deu_Latn"), low_accuracy=True)
    assert set(det.codes.values()) == {"eng_Latn", "fra_Latn", "deu_Latn"}
    assert det.detect("le chat noir dort sur le canapé").code == "fra_Latn"
    assert det.detect("der Hund läuft am Strand").code == "deu_Latn"
    only = Lingua(("fra_Latn",))
    assert only.detect("anything").code == "fra_Latn"


def test_py3langid_keeps_to_the_supported_languages():
    det = Py3LangId(("eng_Latn", "fra_Latn"))
    assert det.detect("cat").code in ("eng_Latn", "fra_Latn")  # py3langid alone says Romanian


def test_the_identifier_is_chosen_by_name(monkeypatch):
    assert DEFAULT_BACKEND == "lingua-low"
    monkeypatch.setenv("VIDSONAR_LANGUAGE_ID", "py3langid")
    assert detect_language("Une femme traverse la rue sous la pluie", e5_languages()).code == "fra_Latn"
    with pytest.raises(ValueError, match="unknown language identifier 'fasttext'"):
        make_detector("fasttext")
