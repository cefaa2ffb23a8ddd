"""VectorIndex: recall against exact search, rerank, add after train, delete, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic import clustered
from storage.recall import recall_at_k
from storage.vectors import INDEX_FILE, MANIFEST_FILE, VectorIndex
from vidsonar.errors import CorruptIndexError, IndexError_, SpaceMismatchError

DIM = 64
FACTORY = "IVF32,PQ8np"  # 8-byte codes of 64-d vectors: PQ alone ranks poorly, as at scale


@pytest.fixture(scope="module")
def data():
    base = clustered(12_000, DIM, seed=3)
    queries = clustered(200, DIM, seed=3, stream=1)
    exact = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    return base, queries, exact


def ids_of(rows):
    return np.asarray(rows, np.int64) * 7 + 1000  # snippet ids are not row numbers


def recall(found, exact):
    return recall_at_k(found, ids_of(exact), exact.shape[1])


_TRAINED = {}


def build(base, directory=None, n=None, k_factor=10):
    """An index trained once per session (training is the slow part), then filled."""
    import faiss
    n = len(base) if n is None else n
    index = VectorIndex.create(FACTORY, DIM, "test-space", "nprobe=8", k_factor=k_factor,
                               directory=directory)
    if "index" not in _TRAINED:
        index.train(base[:10_000])
        _TRAINED["index"] = faiss.clone_index(index.index)
    else:
        index.index = faiss.clone_index(_TRAINED["index"])
        index.set_params("nprobe=8")
    for start in range(0, n, 4000):
        stop = min(start + 4000, n)
        index.add(ids_of(np.arange(start, stop)), base[start:stop])
    return index


def test_rerank_recall_against_exact_search(data):
    base, queries, exact = data
    index = build(base)
    _, approx = index.search(queries, 10, rerank=False)
    scores, reranked = index.search(queries, 10)
    assert recall(approx, exact) < 0.8  # PQ8 alone: the rerank has work to do
    assert recall(reranked, exact) >= 0.9
    # reranked scores are the exact inner products, best first
    rows = (reranked - 1000) // 7
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, base[rows]), atol=2e-3)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_flat_index_is_exact(data):
    base, queries, exact = data
    index = VectorIndex.create("IDMap2,Flat", DIM, "test-space")
    index.add(ids_of(np.arange(len(base))), base)
    assert recall(index.search(queries, 10)[1], exact) == 1.0


def test_add_after_training_is_searchable(data):
    base, _, _ = data
    index = build(base, n=6000)
    assert index.count == 6000
    late = base[9000:9100]
    index.add(ids_of(np.arange(9000, 9100)), late)
    _, found = index.search(late, 1)
    assert (found[:, 0] == ids_of(np.arange(9000, 9100))).mean() >= 0.95


def test_remove_range_drops_ids_from_results(data, tmp_path):
    base, queries, _ = data
    index = build(base, tmp_path)
    lo, hi = int(ids_of(0)), int(ids_of(3000))
    assert index.remove_range(lo, hi) == 3000
    assert index.count == len(base) - 3000
    _, found = index.search(base[:200], 10)
    assert not ((found >= lo) & (found < hi)).any()
    index.save(tmp_path)
    _, reloaded = VectorIndex.load(tmp_path).search(base[:200], 10)
    np.testing.assert_array_equal(found, reloaded)


def test_persistence_round_trip_with_and_without_mmap(data, tmp_path):
    base, queries, _ = data
    index = build(base, tmp_path)
    expected = index.search(queries, 10)
    manifest = index.save(tmp_path)
    stored = json.loads((tmp_path / MANIFEST_FILE).read_text())
    for key in ("factory", "params", "space", "dim", "count", "faiss_version", "checksum", "k_factor"):
        assert stored[key] == getattr(manifest, key)
    assert stored["count"] == len(base) and stored["params"] == "nprobe=8"
    for mmap in (False, True):
        loaded = VectorIndex.load(tmp_path, space="test-space", dim=DIM, mmap=mmap)
        assert loaded.read_only is mmap
        scores, ids = loaded.search(queries, 10)
        np.testing.assert_array_equal(ids, expected[1])
        np.testing.assert_allclose(scores, expected[0], atol=1e-6)


def test_in_memory_index_saves_its_vectors_on_first_save(data, tmp_path):
    base, queries, _ = data
    index = build(base, directory=None, n=5000)
    expected = index.search(queries, 5)[1]
    index.save(tmp_path)
    np.testing.assert_array_equal(VectorIndex.load(tmp_path).search(queries, 5)[1], expected)


def test_mmapped_index_refuses_writes_instead_of_aborting(data, tmp_path):
    base, _, _ = data
    build(base, tmp_path, n=5000).save(tmp_path)
    loaded = VectorIndex.load(tmp_path, mmap=True)
    with pytest.raises(IndexError_, match="read-only"):
        loaded.add(ids_of(np.array([99_999])), base[:1])
    with pytest.raises(IndexError_, match="read-only"):
        loaded.remove_range(0, 2**40)


def test_rows_appended_after_the_last_save_are_dropped(data, tmp_path):
    base, queries, _ = data
    index = build(base, tmp_path, n=5000)
    index.save(tmp_path)
    index.add(ids_of(np.arange(5000, 6000)), base[5000:6000])
    index.full.flush()  # on disk, but the process "crashes" before the manifest
    loaded = VectorIndex.load(tmp_path)
    assert loaded.count == 5000 and loaded.full.rows == 5000
    assert loaded.full.vectors_path.stat().st_size == 5000 * DIM * 2


def test_an_untidy_load_leaves_the_files_as_found(data, tmp_path):
    """A read-only folder: rows a crashed writer appended stay on disk, past the rows read."""
    base, _, _ = data
    index = build(base, tmp_path, n=5000)
    index.save(tmp_path)
    index.add(ids_of(np.arange(5000, 6000)), base[5000:6000])
    index.full.flush()
    loaded = VectorIndex.load(tmp_path, tidy=False)
    assert loaded.count == 5000 and loaded.full.rows == 5000
    assert loaded.full.vectors_path.stat().st_size == 6000 * DIM * 2


@pytest.fixture
def saved(data, tmp_path):
    build(data[0], tmp_path, n=5000).save(tmp_path)
    return tmp_path


def test_space_and_dimension_mismatch(saved):
    with pytest.raises(SpaceMismatchError, match="test-space"):
        VectorIndex.load(saved, space="other")
    with pytest.raises(SpaceMismatchError, match="384"):
        VectorIndex.load(saved, dim=384)


def test_corrupt_index_file(saved):
    path = saved / INDEX_FILE
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptIndexError, match="checksum"):
        VectorIndex.load(saved)


def test_corrupt_manifest(saved):
    (saved / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(CorruptIndexError, match="manifest"):
        VectorIndex.load(saved)


def test_truncated_full_vectors(saved):
    path = next(saved.glob("vectors-*.f16"))
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 2 * DIM)
    with pytest.raises(CorruptIndexError, match="rows"):
        VectorIndex.load(saved)


def test_tampered_ids(saved):
    path = next(saved.glob("ids-*.i64"))
    ids = np.fromfile(path, np.int64)
    ids[0] += 1
    ids.tofile(path)
    with pytest.raises(CorruptIndexError, match="checksum"):
        VectorIndex.load(saved)


def test_a_rebuild_leaves_one_generation_of_files(data, tmp_path):
    base, _, _ = data
    build(base, tmp_path, n=5000).save(tmp_path)
    build(base, tmp_path, n=6000).save(tmp_path)
    assert len(list(tmp_path.glob("vectors-*.f16"))) == 1
    assert VectorIndex.load(tmp_path).count == 6000


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to fill a disk")
def test_a_full_disk_fails_the_index_write_instead_of_saving_an_empty_file():
    """FAISS's own writer prints "No space left on device" at close and returns: a reindex on a
    full disk then renamed an empty file over the good index."""
    import errno

    import faiss

    from storage.vectors import write_index
    index = faiss.IndexFlatIP(8)
    index.add(np.ones((4, 8), np.float32))
    with pytest.raises(OSError) as err:
        write_index(index, "/dev/full")
    assert err.value.errno == errno.ENOSPC
