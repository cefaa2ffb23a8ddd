"""One contract for every vector backend: FAISS, Milvus Lite in-process, a `milvus-lite server`
subprocess, and (opt-in, VIDSONAR_TEST_MILVUS_URI) a real Milvus deployment.

Each runs through IndexStore over a real SQLite catalog, so the change log is part of the
contract: add, search (recall against exact numpy), filters pushed down, one hit per video,
delete, reopen, and catch-up from the log after a simulated crash.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from storage import changes
from storage.backends import parse_index_url
from storage.catalog import Catalog, SnippetRecord
from storage.ids import INDEX_BITS, pack_snippet_id
from storage.index_store import IndexStore
from vidsonar.errors import InputError

DIM = 32
VIDEOS = 12
PER_VIDEO = 40
K = 10


def unit(rng, n):
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v.astype(np.float16), np.float32)  # what the catalog keeps


def commit_video(catalog: Catalog, space: str, tag: str, vectors: np.ndarray,
                 store: IndexStore | None = None, keep_vectors: bool = True,
                 vid: int | None = None) -> tuple[int, int]:
    """A video as the ingestion writer commits it: (video id, its change-log seq). Without a
    store it is committed but never indexed, as if the process died right after the commit."""
    vid = vid or catalog.reserve_video(f"/v/{tag}.mp4", tag, 1, None)
    records = [SnippetRecord(pack_snippet_id(vid, i), i, 4.0 * i, 4.0 * i + 4, [4.0 * i])
               for i in range(len(vectors))]
    ids = np.array([r.id for r in records], np.int64)
    if store is not None:
        store.prepare(ids, vectors, [r.start for r in records], [r.end for r in records])
    seq = catalog.complete_video(vid, space=space, info={"duration": 4.0 * len(vectors)},
                                 snippets=records, vectors=vectors, keep_vectors=keep_vectors)
    if store is not None:
        store.add(ids, vectors, seq=seq)
    return vid, seq


def exact_top(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


# --- the backends -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """`milvus-lite server` on a loopback port, started here and stopped by its pid."""
    pytest.importorskip("pymilvus", reason="pymilvus (vidsonar[milvus]) is not installed")
    exe = Path(sys.executable).with_name("milvus-lite")
    if not exe.exists():
        pytest.skip("the milvus-lite command (vidsonar[milvus]) is not installed")
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(data / "db"), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        from pymilvus import MilvusClient
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"milvus-lite server exited: {(data / 'server.log').read_text()[-2000:]}")
            try:
                MilvusClient(uri=uri).list_collections()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    pytest.fail("milvus-lite server did not answer within 60 s")
                time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


BACKENDS = ["faiss", "milvus-lite", "milvus-server", "milvus-remote"]


@pytest.fixture(params=BACKENDS)
def index_url(request, tmp_path):
    kind = request.param
    if kind == "faiss":
        return "faiss"
    pytest.importorskip("pymilvus", reason="pymilvus (vidsonar[milvus]) is not installed")
    if kind == "milvus-lite":
        pytest.importorskip("milvus_lite", reason="milvus-lite (vidsonar[milvus]) is not installed")
        return f"milvus:{tmp_path / 'milvus.db'}"
    if kind == "milvus-server":
        return "milvus:" + request.getfixturevalue("milvus_server")
    remote = os.environ.get("VIDSONAR_TEST_MILVUS_URI")
    if not remote:
        pytest.skip("set VIDSONAR_TEST_MILVUS_URI=http://HOST:19530 to run the contract "
                    "against a real Milvus deployment")
    return "milvus:" + remote


@pytest.fixture
def world(tmp_path, index_url):
    """A catalog with VIDEOS committed videos; a fresh space name per test keeps collections
    on a shared server apart."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    space = f"t{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(3)
    data = {}
    for v in range(VIDEOS):
        vecs = unit(rng, PER_VIDEO)
        vid, _ = commit_video(catalog, space, f"video{v}", vecs)
        data[vid] = vecs
    opened = []

    def open_store(**kwargs) -> IndexStore:
        store = IndexStore(catalog, space, DIM, tmp_path / "index", url=index_url, **kwargs)
        opened.append(store)
        return store

    yield catalog, space, data, open_store, rng
    for store in opened:
        store.close()
    if index_url.startswith("milvus:http"):
        from pymilvus import MilvusClient
        client = MilvusClient(uri=index_url[len("milvus:"):])
        if client.has_collection(f"vidsonar_{space}"):
            client.drop_collection(f"vidsonar_{space}")


def all_rows(data):
    ids = np.concatenate([np.arange(len(v)) + (vid << INDEX_BITS) for vid, v in data.items()])
    return ids.astype(np.int64), np.concatenate(list(data.values()))


# --- the contract -------------------------------------------------------------------------
def test_open_catches_up_and_search_matches_exact(world):
    catalog, space, data, open_store, rng = world
    store = open_store()
    assert store.index.count == VIDEOS * PER_VIDEO
    assert store.index.seq == changes.last_seq(catalog)
    ids, vectors = all_rows(data)
    queries = unit(rng, 20)
    _, found = store.search(queries, K)
    assert recall(found, exact_top(ids, vectors, queries, K)) >= 0.95
    scores, found = store.search(vectors[:5], 1)  # a stored vector finds itself
    assert list(found[:, 0]) == list(ids[:5]) and np.allclose(scores[:, 0], 1.0, atol=1e-3)


def test_filters_are_pushed_down(world):
    catalog, space, data, open_store, rng = world
    store = open_store()
    allowed = np.array(sorted(data)[2:5], np.int64)
    ids, vectors = all_rows(data)
    keep = np.isin(ids >> INDEX_BITS, allowed)
    queries = unit(rng, 10)
    _, found = store.search(queries, K, videos=allowed)
    assert set((found[found >= 0] >> INDEX_BITS).tolist()) <= set(allowed.tolist())
    assert recall(found, exact_top(ids[keep], vectors[keep], queries, K)) >= 0.95
    _, none = store.search(queries, K, videos=np.array([10**6], np.int64))
    assert (none == -1).all()
    _, grouped = store.search(queries, 5, per_video=True)
    for row in grouped:
        videos = (row[row >= 0] >> INDEX_BITS).tolist()
        assert len(videos) == 5 and len(set(videos)) == 5


def test_delete_then_reopen_without_rebuild_or_replay(world):
    catalog, space, data, open_store, rng = world
    store = open_store()
    victim = sorted(data)[3]
    removed, deleted = store.delete_video(victim)
    assert (removed, deleted) == (PER_VIDEO, True)
    assert store.index.count == (VIDEOS - 1) * PER_VIDEO
    _, found = store.search(data[victim][:3], K)
    assert not np.isin(found >> INDEX_BITS, [victim]).any()
    store.checkpoint()
    seq = store.index.seq
    store.close()
    again = open_store()
    assert again.index.count == (VIDEOS - 1) * PER_VIDEO
    assert (again.index.seq, again.replayed, again.rebuilds) == (seq, 0, 0)
    _, found = again.search(data[victim][:3], K)
    assert not np.isin(found >> INDEX_BITS, [victim]).any()


def test_crash_after_commit_is_replayed_from_the_log(world):
    catalog, space, data, open_store, rng = world
    store = open_store()
    saved = store.checkpoint()
    builds = store.index.manifest.builds
    store.close()
    # committed but never indexed: two new videos and a delete, as if each writer died
    new = {commit_video(catalog, space, f"late{i}", unit(rng, PER_VIDEO))[0]: None for i in range(2)}
    gone = sorted(data)[0]
    assert catalog.delete_video(gone)
    again = open_store()
    assert again.index.seq == changes.last_seq(catalog) == saved + 3
    assert (again.replayed, again.rebuilds, again.index.manifest.builds) == (3, 0, builds)
    assert again.index.count == (VIDEOS + 1) * PER_VIDEO
    for vid in new:
        _, vecs = catalog.vectors_for([pack_snippet_id(vid, 7)], space)
        assert again.search(vecs, 1)[1][0, 0] == pack_snippet_id(vid, 7)
    _, found = again.search(data[gone][:3], K)
    assert not np.isin(found >> INDEX_BITS, [gone]).any()


def test_vectors_of_record_with_and_without_the_catalog_copy(world, index_url):
    catalog, space, data, open_store, rng = world
    if index_url == "faiss":
        with pytest.raises(InputError, match="keeps full vectors"):
            open_store(catalog_vectors=False)
        return
    store = open_store(catalog_vectors=False)
    _ = store.index
    vecs = unit(rng, PER_VIDEO)
    vid, _ = commit_video(catalog, space, "no-copy", vecs, store=store, keep_vectors=False)
    assert catalog.vectors_for([pack_snippet_id(vid, 0)], space)[0].size == 0  # no catalog copy
    found, got = store.vectors_for([pack_snippet_id(vid, 5), pack_snippet_id(vid, 0)])
    assert list(found) == [pack_snippet_id(vid, 5), pack_snippet_id(vid, 0)]
    assert np.allclose(got, vecs[[5, 0]], atol=1e-6)
    assert store.search(vecs[5:6], 1)[1][0, 0] == pack_snippet_id(vid, 5)
    removed, deleted = store.delete_video(vid)
    assert (removed, deleted) == (PER_VIDEO, True) and store.vectors_for([pack_snippet_id(vid, 5)])[0].size == 0


def test_index_url_is_parsed_in_one_place(monkeypatch, tmp_path):
    assert parse_index_url("faiss").backend == "faiss"
    lite = parse_index_url(f"milvus:{tmp_path}/m.db")
    assert lite.backend == "milvus" and lite.lite and lite.uri == f"{tmp_path}/m.db"
    monkeypatch.setenv("VIDSONAR_MILVUS_TOKEN", "root:secret")
    server = parse_index_url("milvus:http://db.example:19530")
    assert not server.lite and server.token == "root:secret"
    assert "secret" not in str(server.describe()) and server.describe()["token"] == "***"
    assert parse_index_url("milvus:http://u:pw@h:19530").redacted() == "milvus:http://***@h:19530"
    monkeypatch.setenv("VIDSONAR_INDEX", "milvus:/x/y.db")
    assert parse_index_url().uri == "/x/y.db"
    for bad in ("milvus:", "lance:/x", "FAISS!"):
        with pytest.raises(InputError, match="index URL"):
            parse_index_url(bad)


def test_milvus_index_type_by_deployment():
    from storage.backends.milvus_backend import choose_milvus_index
    assert choose_milvus_index(10_000, 384, lite=True)[0] == "FLAT"
    assert choose_milvus_index(10**6, 384, lite=True)[0] == "IVF_SQ8"
    assert choose_milvus_index(10**8, 384, lite=False)[0] == "DISKANN"
    assert choose_milvus_index(10**8, 384, lite=False, gpu=True)[0] == "GPU_CAGRA"
    assert choose_milvus_index(10**6, 384, lite=False, requested="ivf_pq") == \
        ("IVF_PQ", {"nlist": 4000, "m": 48, "nbits": 8})
    with pytest.raises(InputError, match="not offered by Milvus Lite"):
        choose_milvus_index(10, 384, lite=True, requested="IVF_PQ")


@pytest.mark.parametrize("catalog_vectors", [True, False], ids=["catalog-copy", "no-catalog-copy"])
def test_searcher_filters_and_collapses_through_the_backend(world, index_url, catalog_vectors,
                                                            shared_cache, tmp_path):
    from encoders.registry import load_space
    from search.searcher import Searcher
    from storage.annotations import Filters
    catalog, space, data, open_store, rng = world
    if index_url == "faiss" and not catalog_vectors:
        pytest.skip("FAISS needs the catalog's copy (checked in test_vectors_of_record_...)")
    store = open_store(catalog_vectors=catalog_vectors)
    _ = store.index
    vecs = unit(rng, PER_VIDEO)
    vid, _ = commit_video(catalog, space, "searched", vecs, store=store, keep_vectors=catalog_vectors)
    searcher = Searcher(catalog, load_space("lite", cache_dir=shared_cache), store, tmp_path / "thumbs")
    hits = searcher.search_vector(vecs[7], 5, moments=False, filters=Filters(video_ids=(vid, 1)))
    assert hits[0].snippet_id == pack_snippet_id(vid, 7) and {h.video_id for h in hits} <= {vid, 1}
    grouped = searcher.search_vector(vecs[7], 4, moments=False, group_by_video=True)
    assert len({h.video_id for h in grouped}) == len(grouped) == 4


def test_info_reports_the_backend_with_the_token_redacted(tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite", reason="milvus-lite (vidsonar[milvus]) is not installed")
    from search.archive import Archive
    monkeypatch.setenv("VIDSONAR_MILVUS_TOKEN", "root:hunter2")
    archive = Archive(tmp_path / "home", "lite", index=f"milvus:{tmp_path / 'm.db'}")
    info = archive.info()["index"]
    assert (info["backend"], info["uri"], info["token"]) == ("milvus", f"milvus:{tmp_path / 'm.db'}", "***")
    assert "hunter2" not in str(archive.info())
    archive.store.close()
    assert Archive(tmp_path / "home2", "lite").info()["index"]["backend"] == "faiss"
