from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from storage import migrations
from storage.catalog import Catalog, SnippetRecord
from storage.ids import pack_snippet_id
from tests.fakes import add_video


@pytest.fixture
def catalog(tmp_path):
    return Catalog(f"sqlite:///{tmp_path / 'c.db'}")


def _add_video(catalog, digest="h1", n=3, dim=4, space="s"):
    vectors = np.random.default_rng(len(digest) + n).standard_normal((n, dim)).astype(np.float32)
    vid, ids = add_video(catalog, vectors, space, path=f"/v/{digest}.mp4", digest=digest)
    return vid, ids, vectors


def test_migrations_are_recorded_and_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Catalog(url)
    Catalog(url)  # opening again applies nothing new
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        assert migrations.applied_versions(conn) == {m[0] for m in migrations.MIGRATIONS}
        assert migrations.upgrade(conn) == []


def test_complete_video_writes_snippets_and_float16_embeddings(catalog):
    vid, snippet_ids, vectors = _add_video(catalog)
    video = catalog.video(vid)
    assert video.status == "ok" and video.duration == 12.0
    rows = catalog.snippets(snippet_ids.tolist())
    assert sorted(rows) == snippet_ids.tolist()
    assert rows[snippet_ids[1]].start == 4.0 and rows[snippet_ids[1]].video.path == "/v/h1.mp4"
    assert rows[snippet_ids[1]].frame_times == [4.5]
    ((ids, got),) = list(catalog.embeddings("s"))
    assert list(ids) == snippet_ids.tolist()
    np.testing.assert_allclose(got, vectors, atol=2e-3)
    assert catalog.embedding_count("s") == 3 and catalog.spaces() == ["s"]


def test_vector_count_must_match_snippets(catalog):
    vid = catalog.reserve_video("/v/x.mp4", "hx", 1, None)
    with pytest.raises(ValueError, match="2 snippets but 1 vectors"):
        catalog.complete_video(vid, space="s", info={}, snippets=[SnippetRecord(pack_snippet_id(vid, i), i, 0, 1, [])
                                                                 for i in range(2)],
                               vectors=np.zeros((1, 4), np.float32))


def test_failures_are_recorded_then_retried(catalog):
    catalog.record_failure("/v/bad.mp4", "hbad", 5, "broken", None)
    (failed,) = catalog.videos(status="failed")
    assert failed.error == "broken"
    vid = catalog.reserve_video("/v/bad.mp4", "hbad", 5, None)  # the same bytes, tried again
    assert vid == failed.id and catalog.video(vid).status == "pending"


def test_delete_removes_rows_and_embeddings(catalog):
    vid, snippet_ids, _ = _add_video(catalog)
    other, _, _ = _add_video(catalog, "h2")
    assert catalog.delete_video(vid)
    assert catalog.snippets(snippet_ids.tolist()) == {}
    assert catalog.embedding_count("s") == 3
    assert catalog.counts()["videos"] == 1 and catalog.video(other) is not None
    assert not catalog.delete_video(vid)


def test_runs_are_recorded(catalog):
    run = catalog.start_run("s")
    catalog.finish_run(run, ingested=2, failed=1, media_seconds=10.0, wall_seconds=2.0)
    last = catalog.last_run()
    assert (last.id, last.ingested, last.failed) == (run, 2, 1) and last.finished_at is not None
