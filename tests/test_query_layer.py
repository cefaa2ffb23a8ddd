"""The query layer: languages, alignment consistency, moments, filters, summaries, examples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, strategies as st

from encoders.language_id import detect_language
from encoders.languages import e5_languages, flores200, language_name, resolve_language
from search import moments
from search.rerank import alignment_consistency, blend, rankdata, spearman
from search.searcher import Searcher
from storage.annotations import Filters, add_tags, remove_tags, tags_of
from storage.catalog import Catalog
from storage.ids import pack_snippet_id
from storage.index_store import IndexStore
from tests.fakes import add_video
from vidsonar.errors import InputError, NotFoundError, UnknownLanguageError


# --- languages ---------------------------------------------------------------------------------
def test_aliases_codes_and_names():
    for alias in ("fra_Latn", "fr", "fra", "French", "french"):
        assert resolve_language(alias, flores200()) == "fra_Latn"
    assert resolve_language("Chinese", flores200()) == "zho_Hans"
    assert resolve_language("Arabic", flores200()) == "arb_Arab"
    assert language_name("deu_Latn") == "German"
    with pytest.raises(UnknownLanguageError, match="Frnech.*did you mean"):
        resolve_language("Frnech", flores200())


@pytest.mark.parametrize("text,code", [
    ("Une femme traverse la rue sous la pluie avec un parapluie rouge", "fra_Latn"),
    ("Ein Mann fährt mit dem Fahrrad durch den verschneiten Wald", "deu_Latn"),
    ("一个男人在海边遛狗，天空中有很多海鸥", "zho_Hans"),
    ("एक आदमी समुद्र के किनारे अपने कुत्ते को घुमा रहा है", "hin_Deva"),
])
def test_detection_of_sentences(text, code):
    found = detect_language(text, e5_languages())
    assert found.code == code and found.confidence > 0.5


# --- alignment consistency -----------------------------------------------------------------------
def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks [0,1,2,3] vs [1,0,3,2]: d^2 = 4, rho = 1 - 6*4/(4*15) = 0.6
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0  # constant: no information
    assert list(rankdata([3, 1, 1, 2])) == [3.0, 0.5, 0.5, 2.0]


def test_ac_with_anchors_by_hand():
    refs = np.eye(4)
    q = np.array([0.4, 0.3, 0.2, 0.1])
    same_order = np.array([0.9, 0.5, 0.4, 0.1])
    reversed_ = np.array([0.1, 0.2, 0.3, 0.9])
    ac = alignment_consistency(q, np.stack([same_order, reversed_]), refs)
    assert ac == pytest.approx([1.0, -1.0])
    assert blend([0.2, 0.3], ac, 0.1) == pytest.approx([0.3, 0.2])


def test_ac_with_candidates_leaves_each_out_of_its_own_references():
    rng = np.random.default_rng(0)
    cands = rng.standard_normal((6, 8))
    q = cands[0] + 0.01 * rng.standard_normal(8)
    ac = alignment_consistency(q, cands)
    assert ac.shape == (6,) and ac[0] == ac.max()
    assert alignment_consistency(q, cands[:2]).tolist() == [0.0, 0.0]  # too few references


# --- moments -------------------------------------------------------------------------------------
hit_lists = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 12), st.floats(0, 1)), max_size=30,
                     unique_by=lambda t: (t[0], t[1]))


def _hits(spec):
    return [{"snippet_id": v * 100 + i, "video_id": v, "start": 4.0 * i, "end": 4.0 * (i + 1),
             "score": s, "video_path": f"/v{v}.mp4"} for v, i, s in spec]


@given(hit_lists)
def test_merging_keeps_every_snippet_once_and_moments_apart(spec):
    hits = _hits(spec)
    merged = moments.merge_adjacent(hits) if hits else []
    assert sorted(s for m in merged for s in m["snippet_ids"]) == sorted(h["snippet_id"] for h in hits)
    for m in merged:
        members = [h for h in hits if h["snippet_id"] in m["snippet_ids"]]
        assert m["score"] == max(h["score"] for h in members)
        assert (m["start"], m["end"]) == (min(h["start"] for h in members), max(h["end"] for h in members))
        assert m["end"] - m["start"] == 4.0 * len(members)  # a moment is a contiguous run
    by_video = {}
    for m in merged:
        by_video.setdefault(m["video_id"], []).append((m["start"], m["end"]))
    for spans in by_video.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # gaps between moments
    assert [m["score"] for m in merged] == sorted((m["score"] for m in merged), reverse=True)


def test_duplicates_across_videos_collapse_into_the_best():
    hits = _hits([(1, 0, 0.9), (2, 0, 0.8), (3, 5, 0.7), (1, 3, 0.6)])
    vec = {100: np.array([1.0, 0]), 200: np.array([0.999, 0.045]), 305: np.array([0.0, 1.0]),
           103: np.array([1.0, 0.0])}
    kept = moments.collapse_duplicates(hits, vec.__getitem__)
    assert [h["snippet_id"] for h in kept] == [100, 305, 103]  # 103: same video, not a duplicate
    assert kept[0]["duplicates"] == [200]
    assert [h["video_id"] for h in moments.best_per_video(kept)] == [1, 3]


# --- filters, tags, summaries, examples on a small synthetic archive -----------------------------
@pytest.fixture
def archive(tmp_path, lite_space):
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    rng = np.random.default_rng(1)
    for v, (path, duration) in enumerate([("/a/2024/one.mp4", 8.0), ("/a/2025/two.mp4", 12.0),
                                          ("/b/three.mp4", 4.0)], start=1):
        vecs = rng.standard_normal((int(duration // 4), 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        add_video(catalog, vecs, "lite", path=path, digest=f"h{v}")
    # the session's lite space: its models load lazily (vectors only here), and once per session
    store = IndexStore(catalog, "lite", 384, tmp_path / "index")
    return Searcher(catalog, lite_space, store, tmp_path / "thumbs")


def _query_like(searcher, snippet_id):
    ids, vecs = searcher.catalog.vectors_for([snippet_id], "lite")
    return vecs[0]


def test_filters(archive):
    q = _query_like(archive, pack_snippet_id(2, 1))
    videos = lambda f: {h.video_id for h in archive.search_vector(q, 10, filters=f, moments=False)}
    assert videos(Filters()) == {1, 2, 3}
    assert videos(Filters(video_ids=(1, 3))) == {1, 3}
    assert videos(Filters(path_glob="/a/*")) == {1, 2}
    assert videos(Filters(path_glob="*/2025/*.mp4")) == {2}
    assert videos(Filters(min_duration=5)) == {1, 2}
    assert videos(Filters(max_duration=8)) == {1, 3}
    assert videos(Filters(ingested_after=dt.datetime(2100, 1, 1))) == set()
    add_tags(archive.catalog, 3, ["interview", "night"])
    assert videos(Filters(tags=("interview",))) == {3}
    assert videos(Filters(tags=("interview", "day"))) == set()
    assert remove_tags(archive.catalog, 3, ["night"]) == ["interview"]
    assert tags_of(archive.catalog, [1, 3]) == {3: ["interview"]}
    with pytest.raises(NotFoundError):
        add_tags(archive.catalog, 99, ["x"])
    with pytest.raises(InputError, match="tag must be"):
        add_tags(archive.catalog, 1, [" "])


def test_filtered_search_beyond_the_exact_scan_uses_the_index(archive, monkeypatch):
    import storage.vectors as vectors_module
    monkeypatch.setattr(vectors_module, "EXACT_SCAN_MAX", 1)
    q = _query_like(archive, pack_snippet_id(1, 0))
    hits = archive.search_vector(q, 10, filters=Filters(path_glob="/a/*"), moments=False)
    assert {h.video_id for h in hits} == {1, 2} and len(hits) == 5


def test_like_snippet_excludes_itself_and_finds_its_neighbours(archive):
    sid = pack_snippet_id(2, 1)
    result = archive.search_example(like=sid, k=3, moments=False)
    assert sid not in [h.snippet_id for h in result.hits]
    with pytest.raises(NotFoundError):
        archive.search_example(like=pack_snippet_id(9, 0))
    with pytest.raises(InputError, match="exactly one example"):
        archive.search_example(like=sid, image="x.png")


def test_moments_merge_adjacent_top_hits(archive):
    # a query between snippets 0 and 1 of video 2 ranks both first: one moment 0-8 s
    a, b = _query_like(archive, pack_snippet_id(2, 0)), _query_like(archive, pack_snippet_id(2, 1))
    hit = archive.search_vector(a + b, 1)[0]
    assert (hit.video_id, hit.start, hit.end) == (2, 0.0, 8.0)
    assert hit.snippet_ids == [pack_snippet_id(2, 0), pack_snippet_id(2, 1)]


# slow: the labels are the e5 embeddings of lite's 1000 label prompts, made once per session
# (~40 s of CPU, minutes under load) by the first test that needs them, kept in shared_cache
@pytest.mark.slow
def test_lite_summaries_are_labelled_and_cached(archive):
    sid = pack_snippet_id(1, 0)
    first = archive.summarize(sid, "fra_Latn")
    assert first.kind == "labels" and first.text.startswith("nearest concepts (English labels")
    assert not first.cached and archive.summarize(sid, "fra_Latn").cached
    with pytest.raises(NotFoundError):
        archive.summarize(pack_snippet_id(9, 0), "fra_Latn")
    # the labels named are the space's nearest: a snippet at a label's anchor is that label first
    space = archive.space
    _, ids = add_video(archive.catalog, space.anchors[[281, 954]], "lite", digest="anchors")
    for sid, label in zip(ids.tolist(), (space.labels[281], space.labels[954])):
        assert archive.summarize(sid, "eng_Latn").text.split(": ", 1)[1].startswith(label + ", ")


def test_bad_requests(archive):
    assert archive.search_vector(np.ones(384), 10)  # a vector needs no language and no k check
    with pytest.raises(InputError, match="k must be"):
        archive.search("x", k=0)
    with pytest.raises(InputError, match="k must be"):
        archive.search("x", k=10_000)
    with pytest.raises(InputError, match="unknown reranker"):
        archive.search("x", rerank="magic")
