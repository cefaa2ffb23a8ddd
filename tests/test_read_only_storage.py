"""The storage layer opened read-only: the catalog (SQLite's read-only URI, PostgreSQL's
read-only transactions, no migration) and the FAISS index (read, replayed and rebuilt in
memory only). The whole CLI on a read-only home is tests/test_read_only_home.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from storage import schema
from storage.catalog import Catalog
from storage.index_store import IndexStore
from storage.sqlite_read_only import read_only_url
from tests import fakes
from tests.read_only import tree, unwritable
from vidsonar.errors import CatalogError, NotFoundError, ReadOnlyArchiveError

DIM = 8


def filled(url: str) -> int:
    catalog = Catalog(url)
    video_id, _ = fakes.add_video(catalog, np.eye(3, DIM, dtype=np.float32), "test")
    catalog.engine.dispose()  # a closed catalog: SQLite folds its WAL back into the file
    return video_id


# --- the catalog ----------------------------------------------------------------------------
def test_a_read_only_catalog_reads_and_refuses_writes(catalog_url):
    video_id = filled(catalog_url)
    catalog = Catalog(catalog_url, read_only=True)
    assert catalog.read_only and catalog.video(video_id).status == "ok"
    assert catalog.counts()["snippets"] == 3
    with pytest.raises(sa.exc.DBAPIError, match="read-?only"):
        catalog.reserve_video("/videos/new.mp4", "new-digest", 1, None)
    assert len(Catalog(catalog_url).videos()) == 1


def test_an_older_schema_is_not_migrated_but_named(catalog_url):
    filled(catalog_url)
    engine = sa.create_engine(catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0007'"))
    with pytest.raises(CatalogError, match="older than this vidsonar.*writable copy"):
        Catalog(catalog_url, read_only=True)
    with engine.connect() as conn:
        assert schema.current(conn) == "0007"
    engine.dispose()


def test_a_missing_sqlite_catalog_is_not_created(tmp_path):
    with pytest.raises(NotFoundError, match="no catalog"):
        Catalog(f"sqlite:///{tmp_path / 'catalog.db'}", read_only=True)
    assert not list(tmp_path.iterdir())


def test_immutable_only_where_the_wal_files_cannot_be_made(tmp_path, monkeypatch):
    db = tmp_path / "catalog.db"
    filled(f"sqlite:///{db}")
    url = sa.engine.make_url(f"sqlite:///{db}")
    assert read_only_url(url).query == {"mode": "ro", "uri": "true"}  # the folder takes them
    unwritable(monkeypatch, tmp_path)
    assert read_only_url(url).query["immutable"] == "1"
    Path(f"{db}-wal").write_bytes(b"")
    Path(f"{db}-shm").write_bytes(b"")
    assert "immutable" not in read_only_url(url).query  # both there: SQLite reads through them
    Path(f"{db}-shm").unlink()
    assert read_only_url(url).query["immutable"] == "1"  # an empty -wal holds no commits
    Path(f"{db}-wal").write_bytes(b"\0" * 64)
    with pytest.raises(CatalogError, match="catalog.db-shm"):
        read_only_url(url)


def test_a_folder_name_with_uri_characters_opens(tmp_path, monkeypatch):
    folder = tmp_path / "snap 2024?#%20"
    folder.mkdir()
    url = f"sqlite:///{folder / 'catalog.db'}"
    video_id = filled(url)
    unwritable(monkeypatch, folder)
    before = tree(folder)
    assert Catalog(url, read_only=True).video(video_id) is not None
    assert tree(folder) == before


# --- the FAISS index ------------------------------------------------------------------------
@pytest.fixture
def saved_index(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    vectors = np.random.default_rng(0).standard_normal((5, DIM)).astype(np.float32)
    fakes.add_video(catalog, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "test")
    store = IndexStore(catalog, "test", DIM, tmp_path / "index")
    store.checkpoint()
    (tmp_path / "index" / "index.lock").unlink()
    return catalog, tmp_path / "index", vectors


def test_a_read_only_index_loads_without_a_lock_or_a_sweep(saved_index):
    catalog, directory, vectors = saved_index
    stale = directory / ".index.faiss.@host@999999999@x.tmp"  # a writer killed mid-save left it
    stale.write_bytes(b"partial")
    before = tree(directory)
    store = IndexStore(catalog, "test", DIM, directory, read_only=True)
    _, ids = store.search(vectors[:1], 1)
    assert ids[0, 0] >= 0
    store.save()  # nothing to save, nothing refused
    for write in (store.checkpoint, lambda: store.delete_video(1)):
        with pytest.raises(ReadOnlyArchiveError, match="read-only"):
            write()
    assert tree(directory) == before


def test_a_damaged_read_only_index_is_rebuilt_in_memory_only(saved_index):
    catalog, directory, vectors = saved_index
    (directory / "index.faiss").write_bytes(b"damaged")
    before = tree(directory)
    store = IndexStore(catalog, "test", DIM, directory, read_only=True)
    assert store.index.count == 5 and store.rebuilds == 1
    _, ids = store.search(vectors[2:3], 1)
    assert ids[0, 0] >= 0
    assert tree(directory) == before
