"""Ingestion in-process: failures alone, duplicates skipped, index kept in step with the catalog.

Plumbing: the deterministic hash space (``tests.fakes``) stands in for models, passed to the
Archive as an object; only the vector check at the end runs the real lite encoder.
"""

from __future__ import annotations

import numpy as np
import pytest

from samples.footage import write_video
from search.archive import Archive
from storage.vectors import INDEX_FILE
from tests.conftest import moving_frames
from tests.fakes import HASH_SPACE, HashSpace, hash_config
from vidsonar.errors import SpaceMismatchError


class Stages:
    """The ingestion stages over a fresh catalog in ``root``, driven by hand: plan a file, read
    and encode it, hand its rows to the writer in whatever order a runner might."""

    def __init__(self, root, space):
        from indexer.report import IngestReport
        from indexer.stages import Encoder, Planner, ReadSpec, Writer
        from storage.catalog import Catalog
        from storage.index_store import IndexStore
        from storage.items import ItemStore
        self.catalog = Catalog(f"sqlite:///{root}/catalog.db")
        self.store = IndexStore(self.catalog, space.name, space.dim, root / "index")
        self.items, self.report = ItemStore(self.catalog), IngestReport()
        self.writer = Writer(self.catalog, self.store, root / "thumbs", space.name, self.items,
                             self.report, None)
        self.planner = Planner(self.catalog, self.items, None, None, self.report)
        self.encoder, self.spec = Encoder(space=space), ReadSpec.of(4, 8, space.frame_size)

    def rows(self, item) -> list[dict]:
        """``item``'s rows as the reader and encoder give them: its snippets, then its end."""
        from indexer.stages import read_video
        return self.encoder.encode_rows(list(read_video(item.task(), self.spec)))


@pytest.fixture
def space():
    return HashSpace(hash_config())


@pytest.fixture
def clips(tmp_path):
    return [write_video(tmp_path / f"clip{i}.mp4", moving_frames(60, seed=i), fps=12) for i in range(3)]


def test_a_bad_file_fails_alone(home, clips, bad_files, space):
    archive = Archive(home, space)
    # the fixed grid (--shots none): 2 snippets per 5 s clip
    report = archive.ingestor(shots="none").ingest([clips[0], bad_files["text"], clips[1], home / "missing.mp4"])
    assert report.ingested == 2 and len(report.failed) == 2
    assert {f["path"] for f in report.failed} == {str(bad_files["text"]), str(home / "missing.mp4")}
    assert report.snippets == 4 and report.media_seconds == pytest.approx(10.0, abs=0.2)
    assert set(report.stage_seconds) >= {"hash", "decode", "encode", "write"}
    statuses = sorted(v.status for v in archive.catalog.videos())
    assert statuses == ["failed", "failed", "ok", "ok"]
    failed_id = next(v.id for v in archive.catalog.videos() if v.path == str(bad_files["text"]))
    assert not (home / "thumbs" / str(failed_id)).exists()  # a failed video leaves no thumbnails
    assert len(list((home / "thumbs").glob("*/*.jpg"))) == 4


def test_index_is_rebuilt_when_out_of_step_with_the_catalog(home, clips, space):
    archive = Archive(home, space)
    archive.ingestor(shots="none").ingest(clips[:2])  # the fixed grid: 2 snippets a clip
    # a crash between the catalog commit and the index save: the index lags the catalog
    index_file = archive.store.directory / INDEX_FILE
    index_file.write_bytes(index_file.read_bytes()[:100])
    fresh = Archive(home, space)
    assert fresh.store.index.count == 4  # rebuilt from the catalog
    hits = fresh.searcher().search("a white square", k=4, moments=False, collapse=False).hits
    assert len(hits) == 4 and {h.video_id for h in hits} == {1, 2}


def test_searching_with_another_space_is_a_clear_error(home, clips, space):
    from storage.vectors import VectorIndex
    archive = Archive(home, space)
    archive.ingestor().ingest(clips[:1])
    with pytest.raises(SpaceMismatchError, match=f"built with concept space '{HASH_SPACE}', not 'other'"):
        VectorIndex.load(archive.store.directory, space="other")
    with pytest.raises(SpaceMismatchError, match="16-d vectors, the encoder makes 1024-d"):
        VectorIndex.load(archive.store.directory, space=HASH_SPACE, dim=1024)


def test_snippet_vectors_are_unit_norm_and_distinct(lite_space):
    frames = np.stack([np.stack(moving_frames(8, 256, 224, seed=s)) for s in range(2)])
    v = lite_space.encode_snippets(frames)
    assert v.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] < 0.9999


def test_first_ingest_into_a_new_home_adds_each_vector_once(home, clips, space):
    archive = Archive(home, space)
    report = archive.ingestor().ingest(clips)
    assert archive.store.index.count == report.snippets == archive.catalog.embedding_count(HASH_SPACE)


def test_a_twin_planned_after_its_original_was_written_is_still_counted(tmp_path, clips, space):
    """The same bytes at three paths: the planner calls the later ones duplicates while the first
    is in flight, but the local runner's encoder thread passes plan items on ahead of batched
    rows, so a duplicate's plan may reach the writer after the first was written (or failed).
    It was then kept for a completion that had passed: the file counted nowhere (a finished job
    at 11/13 files) and its item never done. It is settled as it comes now."""
    import shutil
    from storage.items import DONE, FAILED
    stages = Stages(tmp_path, space)
    items, report, writer, planner = stages.items, stages.report, stages.writer, stages.planner
    twins = [shutil.copy(clips[0], tmp_path / f"twin{i}.mp4") for i in range(2)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    bad_twin = shutil.copy(bad, tmp_path / "bad-twin.mp4")
    first, twin, other = (planner.plan_one(i, p) for i, p in enumerate([clips[0], twins[0], twins[1]]))
    broken, broken_twin = planner.plan_one(3, bad), planner.plan_one(4, bad_twin)
    assert [i.action for i in (first, twin, other, broken, broken_twin)] == \
        ["read", "duplicate", "duplicate", "read", "duplicate"]
    writer.planned(first)
    writer.planned(twin)  # before: settled when the first completes
    writer.planned(broken)
    for item in (first, broken):
        for r in stages.rows(item):
            writer.accept(r)
    writer.planned(other)  # after the first was written
    writer.planned(broken_twin)  # after the first failed
    assert report.ingested == 1 and report.skipped == 2, (report.ingested, report.skipped)
    assert [f["path"] for f in report.failed] == [str(bad), str(bad_twin)]
    assert f"the same bytes as {bad}, which failed" in report.failed[1]["error"]
    assert [items.get(i.key).status for i in (first, twin, other, broken, broken_twin)] == \
        [DONE, DONE, DONE, FAILED, FAILED]
    assert items.get(other.key).video_id == first.video_id


def test_a_video_deleted_while_it_is_ingested_fails_alone(tmp_path, clips, space):
    """``DELETE /api/videos/N`` (or ``vidsonar delete N``) of a video another run is still
    reading: its row is gone when the writer completes it. That raised AttributeError from the
    catalog and failed the whole job, the other files with it; now that file fails alone."""
    stages = Stages(tmp_path, space)
    catalog, store, report, writer = stages.catalog, stages.store, stages.report, stages.writer
    planner = stages.planner
    gone, kept = planner.plan_one(0, clips[0]), planner.plan_one(1, clips[1])
    for item in (gone, kept):
        writer.planned(item)
    assert catalog.delete_video(gone.video_id)  # as another process's delete does
    for item in (gone, kept):
        for r in stages.rows(item):
            writer.accept(r)
    assert report.ingested == 1 and catalog.video(kept.video_id).status == "ok"
    assert [f["path"] for f in report.failed] == [str(clips[0])]
    assert "deleted while it was ingested" in report.failed[0]["error"]
    assert store.index.count == report.snippets and not writer.unfinished()
