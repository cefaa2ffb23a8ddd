"""Processes sharing one archive (FAISS, whose copies are per process): replay equals a fresh
build, a follower sees other writers' adds and deletes, and two writers never regress each
other's saved index. Separate Catalog/IndexStore objects on one home stand for processes;
one writer is a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from storage import changes
from storage.catalog import Catalog
from storage.ids import INDEX_BITS, pack_snippet_id
from storage.index_store import IndexStore
from storage.vectors import MANIFEST_FILE, Manifest
from tests.test_backends import DIM, commit_video, unit

SPACE = "test"
REPO = Path(__file__).resolve().parents[1]


def process(tmp_path) -> tuple[Catalog, IndexStore]:
    """What one process opens: its own catalog engine and its own copy of the index."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    return catalog, IndexStore(catalog, SPACE, DIM, tmp_path / "index")


def videos_in(store: IndexStore) -> set[int]:
    ids = store.index._label_ids()
    return set((ids[ids >= 0] >> INDEX_BITS).tolist())


def test_replay_equals_a_fresh_build(tmp_path):
    rng = np.random.default_rng(0)
    catalog, store = process(tmp_path)
    for i in range(6):
        commit_video(catalog, SPACE, f"a{i}", unit(rng, 30), store=store)
    seq = store.checkpoint()
    store.close()
    for i in range(3):  # committed after the save: a crash before the next checkpoint
        commit_video(catalog, SPACE, f"b{i}", unit(rng, 30))
    catalog.delete_video(2)
    _, replayed = process(tmp_path)
    assert replayed.index.seq == seq + 4 and replayed.replayed == 4 and replayed.rebuilds == 0
    fresh = IndexStore(catalog, SPACE, DIM, tmp_path / "fresh")
    fresh.rebuild(factory=replayed.index.manifest.factory, params="", k_factor=0)
    assert fresh.rebuilds == 1 and fresh.index.manifest.builds == 1
    assert replayed.index.count == fresh.index.count == catalog.embedding_count(SPACE)
    queries = unit(rng, 8)
    a, b = replayed.search(queries, 10), fresh.search(queries, 10)
    assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0], atol=1e-6)


def test_follow_sees_other_processes_adds_and_deletes(tmp_path):
    rng = np.random.default_rng(1)
    writer_catalog, writer = process(tmp_path)
    first, _ = commit_video(writer_catalog, SPACE, "first", unit(rng, 20), store=writer)
    writer.checkpoint()
    _, reader = process(tmp_path)
    assert videos_in(reader) == {first} and reader.follow() == 0  # nothing new: no work
    second, _ = commit_video(writer_catalog, SPACE, "second", unit(rng, 20), store=writer)
    assert reader.follow() == 1 and videos_in(reader) == {first, second}
    writer.delete_video(first)
    assert reader.follow() == 1 and videos_in(reader) == {second}
    # a real second process commits; the reader (never saving) sees it on its next poll
    script = textwrap.dedent(f"""
        import numpy as np
        from storage.catalog import Catalog
        from storage.index_store import IndexStore
        from tests.test_backends import commit_video, unit
        catalog = Catalog("sqlite:///{tmp_path / 'catalog.db'}")
        store = IndexStore(catalog, "{SPACE}", {DIM}, r"{tmp_path / 'index'}")
        vid, seq = commit_video(catalog, "{SPACE}", "from-subprocess", unit(np.random.default_rng(9), 20), store=store)
        store.checkpoint()
        print(vid)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    third = int(out.stdout.split()[-1])
    assert reader.follow() == 1 and videos_in(reader) == {second, third}
    assert reader.index.seq == changes.last_seq(writer_catalog)


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "IVF8,PQ4np"])
def test_two_writers_never_regress_each_other(tmp_path, factory):
    rng = np.random.default_rng(2)
    cat_0, builder = process(tmp_path)
    base = unit(rng, 300)
    commit_video(cat_0, SPACE, "base", base)
    builder.rebuild(factory=factory, params="nprobe=8" if "IVF" in factory else "",
                    k_factor=20 if "PQ" in factory else 0)  # rerank rows in a shared vectors file
    cat_a, a = process(tmp_path)
    cat_b, b = process(tmp_path)
    _ = a.index, b.index
    vec_a, vec_b, vec_c = unit(rng, 25), unit(rng, 25), unit(rng, 25)
    vb = cat_b.reserve_video("/v/by-b.mp4", "by-b", 1, None)  # b starts first, commits second
    va, _ = commit_video(cat_a, SPACE, "by-a", vec_a, store=a)
    a.checkpoint()
    assert va not in videos_in(b)  # b has not followed a's commit yet
    commit_video(cat_b, SPACE, "by-b", vec_b, store=b, vid=vb)  # b's seq skips a's: b replays
    b.checkpoint()  # under the lock b sees a's newer save and builds on it
    vc, _ = commit_video(cat_a, SPACE, "by-a-again", vec_c, store=a)
    a.checkpoint()  # a's copy is older than b's save now: a must not write it back
    saved = Manifest.read(tmp_path / "index" / MANIFEST_FILE)
    assert saved.seq == changes.last_seq(cat_a) and saved.count == 375
    _, c = process(tmp_path)  # loads only if every file matches its manifest checksum
    assert videos_in(c) == {1, va, vb, vc} and c.replayed == 0 and c.rebuilds == 0
    for vid, vecs in ((va, vec_a), (vb, vec_b), (vc, vec_c), (1, base)):
        scores, ids = c.search(vecs[:4], 1)  # the right rows behind the right ids
        assert list(ids[:, 0]) == [pack_snippet_id(vid, i) for i in range(4)]
        assert np.allclose(scores[:, 0], 1.0, atol=1e-3)


def test_a_rebuild_keeps_serving_and_replays_what_was_committed_meanwhile(tmp_path):
    rng = np.random.default_rng(4)
    catalog, store = process(tmp_path)
    for i in range(4):
        commit_video(catalog, SPACE, f"v{i}", unit(rng, 20), store=store)
    store.checkpoint()
    old = store.backend.index
    fresh = store.backend.build(builds=1)  # built aside: the old index still answers
    assert store.backend.index is old and store.search(unit(rng, 1), 3)[1].shape == (1, 3)
    late, _ = commit_video(catalog, SPACE, "late", unit(rng, 20))
    store.backend.install(fresh)
    store.backend.set_seq(4)  # the seq read before the build started
    store.catch_up()
    assert late in videos_in(store) and store.index.count == catalog.embedding_count(SPACE)
