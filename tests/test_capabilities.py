"""Optional abilities of a concept space are declared on ConceptSpace, and callers ask for them."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize
from encoders.lite import LabelBridgeSpace
from search.searcher import Searcher
from search.summaries import LABELS, _verbalize
from vidsonar.errors import InputError, NoDecoderError


class PlainSpace(ConceptSpace):
    """Deterministic: every text and snippet maps to one fixed vector; no optional ability."""

    needs_language = False

    def _encode_text(self, texts, lang, query):
        return l2_normalize(np.ones((len(texts), self.dim), np.float32))

    def encode_snippets(self, frames):
        return l2_normalize(np.ones((len(frames), self.dim), np.float32))


class LabelledSpace(PlainSpace):
    has_anchors = True
    has_labels = True

    @property
    def anchors(self):
        return l2_normalize(np.eye(4, dtype=np.float32))

    def nearest_labels(self, vectors, k=3):
        return [[("red", 0.9), ("round", 0.5), ("small", 0.1)][:k] for _ in vectors]


CFG = SpaceConfig("plain-test", "none", 4, "e5")


def test_the_base_declares_no_optional_ability_and_says_what_is_missing():
    space = PlainSpace(CFG)
    assert (space.has_decoder, space.has_anchors, space.has_labels) == (False, False, False)
    with pytest.raises(InputError, match="no concept anchors"):
        space.anchors
    with pytest.raises(NoDecoderError, match="no concept labels"):
        space.nearest_labels(np.zeros((1, 4)))


def test_lite_declares_anchors_and_labels_without_loading_its_models():
    assert LabelBridgeSpace.has_anchors and LabelBridgeSpace.has_labels
    assert not PlainSpace.has_anchors


def test_reranking_and_summaries_follow_the_declarations(tmp_path):
    q = l2_normalize(np.array([1, 0, 0, 0], np.float32))
    vecs = l2_normalize(np.eye(4, dtype=np.float32)[:3] + 0.1)
    cos = vecs @ q
    plain = Searcher(None, PlainSpace(CFG), None, tmp_path)
    with pytest.raises(InputError, match="no concept anchors"):
        plain._rerank("ac-anchors", q, vecs, cos, None)
    with pytest.raises(NoDecoderError):
        _verbalize(PlainSpace(CFG), vecs, "eng_Latn", 1, 8)
    labelled = Searcher(None, LabelledSpace(CFG), None, tmp_path)
    assert labelled._rerank("ac-anchors", q, vecs, cos, None).shape == (3,)
    kind, texts = _verbalize(LabelledSpace(CFG), vecs, "eng_Latn", 1, 8)
    assert kind == LABELS and texts[0].endswith("red, round, small")
