"""IndexStore against a real catalog: rebuild, exact search, delete, crash recovery, outgrowing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.synthetic import clustered
from storage.catalog import Catalog
from storage.ids import unpack_snippet_id
from storage.index_store import IndexStore
from tests import fakes
from storage.vectors import VectorIndex

DIM = 32
PER_VIDEO = 1500
VIDEOS = 4


def add_video(catalog: Catalog, n: int, vectors: np.ndarray, tag: str) -> tuple[int, np.ndarray]:
    assert len(vectors) == n
    return fakes.add_video(catalog, vectors, "test", digest=tag * 8)


@pytest.fixture
def archive(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    data = clustered(PER_VIDEO * VIDEOS, DIM, seed=5)
    videos = [add_video(catalog, PER_VIDEO, data[i * PER_VIDEO:(i + 1) * PER_VIDEO], f"v{i}")
              for i in range(VIDEOS)]
    store = IndexStore(catalog, "test", DIM, tmp_path / "index")
    store.rebuild(factory="IVF16,PQ4np", params="nprobe=4", k_factor=20)
    return catalog, store, videos, data.astype(np.float16).astype(np.float32)


def test_rebuild_reranks_to_exact_scores(archive):
    _, store, videos, data = archive
    queries = clustered(50, DIM, seed=5, stream=1)
    scores, ids = store.search(queries, 10)
    all_ids = np.concatenate([ids for _, ids in videos])
    exact = queries @ data.T
    truth = all_ids[np.argsort(-exact, axis=1)[:, :10]]
    assert np.mean([len(set(a) & set(b)) for a, b in zip(ids, truth)]) / 10 >= 0.9
    row = {int(i): r for r, i in enumerate(all_ids)}
    np.testing.assert_allclose(scores, np.take_along_axis(exact, np.vectorize(row.get)(ids), 1), atol=1e-4)
    assert store.index.manifest.built_count == PER_VIDEO * VIDEOS


def test_delete_video_removes_vectors_and_rows(archive, tmp_path):
    catalog, store, videos, data = archive
    video_id, ids = videos[1]
    removed, deleted = store.delete_video(video_id)
    assert (removed, deleted) == (PER_VIDEO, True)
    assert catalog.video(video_id) is None and not catalog.snippets(ids[:5])
    # a fresh process sees a consistent index: no rebuild, no hit on the deleted video
    fresh = IndexStore(catalog, "test", DIM, tmp_path / "index")
    assert fresh.index.count == catalog.embedding_count("test") == PER_VIDEO * (VIDEOS - 1)
    assert not fresh.index.read_only  # IVF lists are read into RAM (mapped ones search slower)
    _, found = fresh.search(data[PER_VIDEO:PER_VIDEO + 100], 10)
    assert not any(unpack_snippet_id(int(i))[0] == video_id for i in found.ravel())


def test_add_to_a_mapped_index_reopens_it_writable(archive, tmp_path):
    catalog, store, _, _ = archive
    store.rebuild(factory="IDMap2,Flat", params="", k_factor=0)
    fresh = IndexStore(catalog, "test", DIM, tmp_path / "index")
    assert fresh.index.read_only  # a flat index is mapped for searching
    extra = clustered(200, DIM, seed=9)
    _, ids = add_video(catalog, 200, extra, "late")
    fresh.add(ids, extra)
    fresh.save()
    assert not fresh.index.read_only
    _, found = fresh.search(extra[:20], 1)
    assert (found[:, 0] == ids[:20]).mean() >= 0.9
    assert VectorIndex.load(tmp_path / "index").count == PER_VIDEO * VIDEOS + 200


def test_index_behind_the_catalog_is_rebuilt(archive, tmp_path):
    catalog, store, _, _ = archive
    extra = clustered(100, DIM, seed=11)
    add_video(catalog, 100, extra, "crash")  # committed to the catalog, never to the index
    fresh = IndexStore(catalog, "test", DIM, tmp_path / "index")
    assert fresh.index.count == catalog.embedding_count("test")


def test_corrupt_index_is_rebuilt_from_the_catalog(archive, tmp_path, caplog):
    catalog, store, _, _ = archive
    (tmp_path / "index" / "index.faiss").write_bytes(b"garbage")
    fresh = IndexStore(catalog, "test", DIM, tmp_path / "index")
    assert fresh.index.count == PER_VIDEO * VIDEOS
    # the warning says what happens, not to run the reindex it is already doing
    (warning,) = [r.getMessage() for r in caplog.records if "rebuilding it from the catalog" in r.getMessage()]
    assert "does not match its manifest" in warning and "vidsonar reindex" not in warning


def test_outgrown_after_ten_times_the_built_size(archive):
    catalog, store, _, _ = archive
    assert not store.outgrown()
    from dataclasses import replace
    store.index.manifest = replace(store.index.manifest, built_count=500)
    assert store.outgrown()


def test_exact_neighbours_streams_batches_like_brute_force():
    from storage.tuning import exact_neighbours
    rng = np.random.default_rng(0)
    base = rng.standard_normal((500, 16)).astype(np.float32)
    ids = np.arange(1000, 1500)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    batches = [(ids[i:i + 64], base[i:i + 64]) for i in range(0, 500, 64)]
    got = exact_neighbours(queries, batches, 5)
    want = ids[np.argsort(-(queries @ base.T), axis=1)[:, :5]]
    assert [set(r) for r in got] == [set(r) for r in want]


def test_rebuild_tunes_nprobe_to_reach_the_recall_target(tmp_path):
    """Unclustered vectors spread their neighbours over many lists: a small nprobe is not enough."""
    from storage.recall import recall_at_k
    from storage.tuning import TARGET_RECALL, exact_neighbours
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    rng = np.random.default_rng(3)
    data = rng.standard_normal((4000, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    _, ids = add_video(catalog, 4000, data, "spread")
    store = IndexStore(catalog, "test", DIM, tmp_path / "index")
    index = store.rebuild(factory="IVF64,PQ8np")
    nprobe = int(index.manifest.params.split("=")[1])
    assert nprobe > 8  # the fixed default would have stopped short
    sample = rng.choice(4000, 100, replace=False)
    truth = exact_neighbours(data[sample], catalog.embeddings("test"), 11)
    _, found = store.search(data[sample], 11)
    assert recall_at_k(found, truth, 10, exclude=ids[sample]) >= TARGET_RECALL - 0.05
    reloaded = VectorIndex.load(tmp_path / "index", space="test", dim=DIM)
    assert reloaded.manifest.params == f"nprobe={nprobe}"


def test_temporary_files_of_killed_writers_are_swept_on_open(archive, tmp_path):
    """A kill -9 during a save leaves a whole index copy as a temporary file; the next open
    removes it, and leaves the files of writers still running."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from storage.atomic import IDLE_STALE_SECONDS
    catalog, _, _, _ = archive
    directory = tmp_path / "index"
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    killed = directory / f".index.faiss.@{host}@{dead}@abc123.tmp"
    running = directory / f".index.faiss.@{host}@{os.getpid()}@def456.tmp"
    elsewhere = directory / f".index.faiss.@another-host@{dead}@ghi789.tmp"
    elsewhere_idle = directory / f".index.faiss.@another-host@{dead}@jkl012.tmp"
    old, recent = directory / ".manifest.json.x1y2.tmp", directory / ".manifest.json.z3w4.tmp"
    for f in (killed, running, elsewhere, elsewhere_idle, old, recent):
        f.write_bytes(b"part of an index")
    past = time.time() - IDLE_STALE_SECONDS - 60
    for f in (old, elsewhere_idle):  # not written for a day: no writer is still at it
        os.utime(f, (past, past))
    IndexStore(catalog, "test", DIM, directory).index  # opening sweeps
    assert not killed.exists() and not old.exists() and not elsewhere_idle.exists()
    assert running.exists() and elsewhere.exists() and recent.exists()


def test_files_written_atomically_get_the_umasks_mode_not_mkstemps(tmp_path):
    """Another user of a shared archive (a read-only search replica) can read what was saved."""
    import stat

    from storage.atomic import FILE_MODE, atomic_write
    target = tmp_path / "index.faiss"
    atomic_write(target, lambda tmp: open(tmp, "wb").write(b"saved"))
    mask = os.umask(0o022)
    os.umask(mask)
    assert FILE_MODE == 0o666 & ~mask
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE != 0o600
