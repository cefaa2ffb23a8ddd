"""End to end with the real bundled models (lite): the query for a reel's middle scene returns
a top moment on that scene, not the whole reel."""

from __future__ import annotations

import pytest

from benchmarks.moments import iou
from samples.footage import load_photo, pan_frames, write_video
from search.archive import Archive

pytestmark = pytest.mark.slow

SCENES = [("coffee", 5.5), ("chelsea", 6.5), ("rocket", 5.0)]  # the cat at 5.5-12.0 s, off the 4 s grid


@pytest.fixture(scope="module")
def reel_archive(tmp_path_factory, shared_cache):
    folder = tmp_path_factory.mktemp("moments-reel")
    frames = [f for photo, seconds in SCENES for f in pan_frames(load_photo(photo), seconds, 12, (320, 240))]
    path = write_video(folder / "reel.mp4", frames, 12)
    archive = Archive(folder / "home", "lite")
    assert archive.ingestor().ingest([path]).ingested == 1
    return archive


@pytest.mark.parametrize("text, lang", [("a cat", "eng_Latn"), ("un chat", "fra_Latn"), ("eine Katze", "deu_Latn")])
def test_middle_scene_query_grounds_on_the_middle_scene(reel_archive, text, lang):
    result = reel_archive.searcher().search(text, lang=lang, k=3)
    top = result.hits[0]
    assert iou((top.start, top.end), (5.5, 12.0)) >= 0.5, (top.start, top.end)
    assert top.end - top.start < 17.0  # not the whole reel
    spans = sorted((m["start"], m["end"]) for m in top.video_moments)
    assert (top.start, top.end) in spans
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # the timeline's moments do not overlap


def test_snippets_option_still_gives_single_snippets(reel_archive):
    hits = reel_archive.searcher().search("a cat", lang="eng_Latn", k=3, moments=False).hits
    assert hits and all(h.snippet_ids == [h.snippet_id] for h in hits)
    rows = reel_archive.catalog.snippets([h.snippet_id for h in hits])
    assert all((h.start, h.end) == (rows[h.snippet_id].start, rows[h.snippet_id].end) for h in hits)
