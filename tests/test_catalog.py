"""The catalog's contract, run against SQLite and a real PostgreSQL server (``tests/pg.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from storage.catalog import Catalog, SnippetRecord, utcnow
from storage.ids import pack_snippet_id
from tests.fakes import add_video


@pytest.fixture
def catalog(catalog_url):
    cat = Catalog(catalog_url)
    yield cat
    cat.engine.dispose()


def _add_video(catalog, digest="h1", n=3, dim=4, space="s"):
    vectors = np.random.default_rng(len(digest) + n).standard_normal((n, dim)).astype(np.float32)
    vid, ids = add_video(catalog, vectors, space, path=f"/v/{digest}.mp4", digest=digest)
    return vid, ids, vectors


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


def test_vector_makers_are_the_encoders_of_the_ok_videos_held(catalog):
    """Per fingerprint, the runs that made ok videos of the space (counted, or only probed)."""
    first, second, other_space = (catalog.start_run("s", "fa", "enc a"), catalog.start_run("s", "fb", "enc b"),
                                  catalog.start_run("t", "fc", "enc c"))
    for run, digest in ((first, "h1"), (first, "h2"), (second, "h3"), (other_space, "h4")):
        vid = catalog.reserve_video(f"/v/{digest}.mp4", digest, 1, run)
        catalog.complete_video(vid, space="s", info={}, snippets=[], vectors=np.zeros((0, 4), np.float32))
    catalog.record_failure("/v/bad.mp4", "hbad", 5, "broken", catalog.start_run("s", "fd", "enc d"))
    counted = [(m.fingerprint, m.encoder, m.videos, m.first_run, m.last_run) for m in catalog.vector_makers("s")]
    assert counted == [("fa", "enc a", 2, first, first), ("fb", "enc b", 1, second, second)]
    probed = [(m.fingerprint, m.videos, m.first_run) for m in catalog.vector_makers("s", count_videos=False)]
    assert probed == [("fa", None, first), ("fb", None, second)]  # the failed video's run made nothing
    catalog.delete_video(catalog.video_by_hash("h3").id)
    assert [m.fingerprint for m in catalog.vector_makers("s", count_videos=False)] == ["fa"]


def test_types_round_trip_big_ids_json_bytes_datetimes(catalog):
    """What PostgreSQL stores differently from SQLite: bigint ids, JSON, bytea, timestamps."""
    from storage.catalog import Video
    with catalog.session() as s:  # a video id whose snippet ids need 64 bits
        s.add(Video(id=3_000_000, path="/v/big.mp4", content_hash="hbig", size_bytes=5 * 2**40,
                    status="pending"))
    records = [SnippetRecord(pack_snippet_id(3_000_000, i), i, 0.5 * i, 0.5 * i + 0.5,
                             [0.125 * i, 1 / 3]) for i in (0, 1, 2**20 - 1)]
    assert records[-1].id > 2**41
    vectors = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    catalog.complete_video(3_000_000, space="s", info={"duration": 1.5}, snippets=records,
                           vectors=vectors)
    got = catalog.snippets([r.id for r in records])
    assert sorted(got) == [r.id for r in records]
    assert got[records[2].id].frame_times == [0.125 * (2**20 - 1), 1 / 3]
    ids, vecs = catalog.vectors_for([records[2].id, records[0].id], "s")
    assert list(ids) == [records[2].id, records[0].id]
    assert vecs.tobytes() == vectors[[2, 0]].astype(np.float16).astype(np.float32).tobytes()
    video = catalog.video(3_000_000)
    assert video.size_bytes == 5 * 2**40 and video.ingested_at.tzinfo is None
    assert abs((video.ingested_at - utcnow()).total_seconds()) < 60


def test_ids_count_up_and_upserts_keep_one_row(catalog):
    a = catalog.reserve_video("/v/a.mp4", "ha", 1, None)
    b = catalog.reserve_video("/v/b.mp4", "hb", 1, None)
    assert b > a
    assert catalog.reserve_video("/v/a2.mp4", "ha", 1, None) == a  # same bytes, same row
    assert catalog.record_failure("/v/a2.mp4", "ha", 1, "bad", None) == a
    assert catalog.counts() == {"videos": 0, "failed": 1, "pending": 1, "snippets": 0, "hours": 0.0}
    assert [v.path for v in catalog.videos()] == ["/v/a2.mp4", "/v/b.mp4"]


def test_embeddings_stream_in_batches(catalog):
    _add_video(catalog, "h1", n=5)
    _add_video(catalog, "h2", n=4)
    parts = list(catalog.embeddings("s", batch=3))
    assert [len(ids) for ids, _ in parts] == [3, 3, 3]
    all_ids = np.concatenate([ids for ids, _ in parts])
    assert list(all_ids) == sorted(all_ids) and parts[0][1].dtype == np.float32


def test_tags_summaries_filters_and_cascading_delete(catalog):
    from storage.annotations import (Filters, add_tags, allowed_videos, cached_summary,
                                     store_summary, tags_of)
    vid, records, _ = _add_video(catalog, "h1")
    other, _, _ = _add_video(catalog, "h2")
    assert add_tags(catalog, vid, ["news", "2024", "news"]) == ["2024", "news"]
    first = int(records[0])
    store_summary(catalog, first, "fra_Latn", "m", "decoded", "un chat")
    store_summary(catalog, first, "fra_Latn", "m", "decoded", "un chien")  # upsert
    assert cached_summary(catalog, first, "fra_Latn", "m").text == "un chien"
    assert tags_of(catalog, [vid, other]) == {vid: ["2024", "news"]}
    assert list(allowed_videos(catalog, Filters(tags=("news",), path_glob="/v/h?.mp4"))) == [vid]
    assert list(allowed_videos(catalog, Filters(path_glob="*.mp4"))) == sorted([vid, other])
    assert list(allowed_videos(catalog, Filters(video_ids=(other,)))) == [other]
    assert list(allowed_videos(catalog, Filters(tags=("sport",)))) == []
    assert catalog.delete_video(vid)
    assert tags_of(catalog, [vid]) == {} and cached_summary(catalog, first, "fra_Latn", "m") is None


def test_jobs_round_trip(catalog):
    from storage.jobs import JobStore
    jobs = JobStore(catalog)
    job = jobs.create("paths", ["/a", "/b"], "s")
    jobs.start(job.id, total=2)
    jobs.advance(job.id, "/a", "ingested")
    jobs.advance(job.id, "/b", "failed", "not a video")
    assert [j.id for j in jobs.unfinished()] == [job.id]
    jobs.requeue(job.id)
    jobs.start(job.id, total=2)  # resumed: counters afresh, one more attempt
    jobs.advance(job.id, "/b", "failed", "not a video")
    jobs.finish(job.id)
    got = jobs.get(job.id)
    assert (got.status, got.attempts, got.done, got.failed) == ("done", 2, 1, 1)
    assert got.errors == [{"path": "/b", "error": "not a video"}] and got.paths == ["/a", "/b"]
    assert jobs.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0}


def test_display_url_hides_the_password(catalog_url):
    from sqlalchemy.engine import make_url
    url = make_url(catalog_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret-pw")  # trust auth: any password opens it
    catalog = Catalog(url.render_as_string(hide_password=False))
    assert "s3cret-pw" not in catalog.display_url and url.database in catalog.display_url
    catalog.engine.dispose()


_RESERVER = """
import sys, time
from pathlib import Path
from storage.catalog import Catalog
catalog = Catalog(sys.argv[1])
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.002)
ids = [catalog.reserve_video(f"/v/{i}.mp4", f"hash{i}", i, None) for i in range(40)]
print(" ".join(map(str, ids)))
"""


def test_two_processes_reserving_the_same_footage_get_one_row_each(catalog_url, tmp_path):
    """Two writers meeting the same bytes at the same moment (a CLI ingest and the server's
    worker): neither fails on the unique hash, both get the same video ids."""
    Catalog(catalog_url).engine.dispose()  # migrated beforehand: this is about the rows
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    go, readies = tmp_path / "go", [tmp_path / "r0", tmp_path / "r1"]
    procs = [subprocess.Popen([sys.executable, "-c", _RESERVER, catalog_url, str(r), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in readies]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(err for _, err in outs)
    first, second = (list(map(int, out.split())) for out, _ in outs)
    assert first == second and len(set(first)) == 40
    catalog = Catalog(catalog_url)
    assert len(catalog.videos()) == 40
    catalog.engine.dispose()


def test_a_video_is_ok_with_its_shots_and_item_or_with_none_of_them(catalog):
    """``complete_video(also=...)``: the writer's shots and item status share the video's commit;
    a failure in any of them leaves the video as it was (pending, no snippets, no change)."""
    from storage.catalog import Video
    from storage.changes import last_seq
    import storage.jobs  # noqa: F401  (the jobs table, which ingest items refer to)
    from storage.items import DONE, ItemStore
    from storage.shots import shots_of, write_shots
    items = ItemStore(catalog)
    items.put("/v/a.mp4", size=10, mtime_ns=1, status="pending", job_id=None)
    with catalog.session() as s:
        s.add(Video(id=7, path="/v/a.mp4", content_hash="ha", size_bytes=10, status="pending"))
    records = [SnippetRecord(pack_snippet_id(7, i), i, 2.0 * i, 2.0 * i + 2, [2.0 * i + 1]) for i in range(2)]
    vectors = np.ones((2, 4), np.float32)
    shots = [(0.0, 1.5), (1.5, 4.0)]

    def broken(session):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        catalog.complete_video(7, space="s", info={"duration": 4.0}, snippets=records, vectors=vectors,
                               also=[lambda s: write_shots(s, 7, shots, "scenedetect", 40.0), broken])
    assert catalog.video(7).status == "pending" and catalog.snippets([r.id for r in records]) == {}
    assert shots_of(catalog, 7) == [] and last_seq(catalog) == 0
    assert items.get("/v/a.mp4").status == "pending"
    seq = catalog.complete_video(7, space="s", info={"duration": 4.0}, snippets=records, vectors=vectors,
                                 also=[lambda s: write_shots(s, 7, shots, "scenedetect", 40.0),
                                       lambda s: items.set_status_in(s, "/v/a.mp4", DONE, video_id=7)])
    assert catalog.video(7).status == "ok" and len(catalog.snippets([r.id for r in records])) == 2
    assert [(x.start, x.end) for x in shots_of(catalog, 7)] == shots
    assert items.get("/v/a.mp4").status == DONE and items.get("/v/a.mp4").video_id == 7
    assert last_seq(catalog) == seq > 0
