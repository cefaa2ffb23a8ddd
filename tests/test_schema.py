"""Alembic migrations of the catalog, on SQLite and a real PostgreSQL server: new catalogs,
catalogs written before Alembic (``schema_version``), unknown schemas, and two processes
opening a new catalog at the same moment."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import migrations, schema
from storage.catalog import Catalog
from vidsonar.errors import CatalogError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def engine(catalog_url):
    eng = sa.create_engine(catalog_url)
    yield eng
    eng.dispose()


def _dump(conn) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, for before/after comparisons."""
    md = sa.MetaData()
    md.reflect(conn)
    return {name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr)
            for name, t in md.tables.items() if name != "alembic_version"}


def _old_catalog(engine, versions: int) -> None:
    """A catalog as the pre-Alembic code wrote it: today's numbered functions applied in
    order and recorded in schema_version, then rows in every table it has."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT)"))
        for version, name, migrate in migrations.MIGRATIONS[:versions]:
            migrate(conn)
            conn.execute(sa.text("INSERT INTO schema_version (version, name) VALUES (:v, :n)"),
                         {"v": version, "n": name})
        md = sa.MetaData()
        md.reflect(conn)
        t = md.tables
        now = dt.datetime(2026, 11, 30, 12, 34, 56, 789000)
        conn.execute(t["ingest_runs"].insert(), [dict(id=1, started_at=now, finished_at=now,
                     space="lite", ingested=2, skipped=0, failed=1, snippets=3,
                     media_seconds=12.5, wall_seconds=1.25)])
        conn.execute(t["videos"].insert(), [
            dict(id=1, path="/v/a.mp4", content_hash="a" * 64, size_bytes=2**40, duration=8.0,
                 fps=25.0, width=64, height=48, rotation=0, status="ok", error=None, run_id=1,
                 ingested_at=now),
            dict(id=2, path="/v/bad.mp4", content_hash="b" * 64, size_bytes=3, duration=None,
                 fps=None, width=None, height=None, rotation=None, status="failed",
                 error="not a video", run_id=1, ingested_at=now)])
        conn.execute(t["snippets"].insert(), [
            dict(id=(1 << 20) | i, video_id=1, idx=i, start=4.0 * i, end=4.0 * i + 4,
                 frame_times=[4.0 * i + 0.25, 4.0 * i + 0.75]) for i in range(3)])
        conn.execute(t["embeddings"].insert(), [
            dict(snippet_id=(1 << 20) | i, space="lite", vector=bytes(range(i, i + 8)))
            for i in range(3)])
        if versions >= 2:
            conn.execute(t["ingest_jobs"].insert(), [dict(
                id=1, kind="paths", status="done", space="lite", paths=["/v"], created_at=now,
                started_at=now, finished_at=now, total=2, done=2, ingested=1, skipped=0,
                failed=1, current=None, errors=[{"path": "/v/bad.mp4", "error": "not a video"}],
                error=None, attempts=1)])
        if versions >= 3:
            conn.execute(t["tags"].insert(), [dict(video_id=1, tag="news")])
            conn.execute(t["summaries"].insert(), [dict(
                snippet_id=1 << 20, lang="fra_Latn", model="m", kind="labels", text="un chat",
                created_at=now)])
    if engine.dialect.name == "postgresql":  # the old code let the sequences count
        with engine.begin() as conn:
            for table in ("ingest_runs", "videos", "ingest_jobs")[:versions + 1]:
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))


def test_every_numbered_migration_has_its_revision():
    """The lead wraps each numbered function in a revision: none forgotten, one chain."""
    scripts = schema._scripts()
    revs = {s.revision: s for s in scripts.walk_revisions()}
    assert set(revs) == {migrations.revision_id(v) for v, _, _ in migrations.MIGRATIONS}
    assert scripts.get_heads() == [schema.head()]
    for version, _, migrate in migrations.MIGRATIONS:
        script = revs[migrations.revision_id(version)]
        assert script.down_revision == (migrations.revision_id(version - 1) if version > 1 else None)
        assert f"migrations.{migrate.__name__}(" in Path(script.path).read_text()


#: every revision, oldest first: one per numbered migration
ALL = [migrations.revision_id(v) for v, _, _ in migrations.MIGRATIONS]
#: tables the revisions after 0003 add
LATER_TABLES = {"vector_changes", "ingest_items", "shots", "owner_leases", "id_marks"}


def test_new_catalog_migrates_once(engine):
    assert schema.upgrade(engine) == ALL == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008",
                                             "0009", "0010"]
    assert schema.upgrade(engine) == []
    with engine.connect() as conn:
        assert schema.current(conn) == schema.head() == "0010"
        names = set(sa.inspect(conn).get_table_names())
        video_columns = {c["name"] for c in sa.inspect(conn).get_columns("videos")}
        run_columns = {c["name"] for c in sa.inspect(conn).get_columns("ingest_runs")}
    assert {"videos", "snippets", "embeddings", "ingest_runs", "ingest_jobs", "tags",
            "summaries", "alembic_version"} | LATER_TABLES <= names and "schema_version" not in names
    assert {"window_seconds", "hop_seconds"} <= video_columns
    assert {"encoder_fingerprint", "encoder"} <= run_columns


@pytest.mark.parametrize("versions", [3, 2, 1])
def test_pre_alembic_catalog_upgrades_without_losing_a_row(engine, catalog_url, versions):
    _old_catalog(engine, versions)
    with engine.connect() as conn:
        before = _dump(conn)
    catalog = Catalog(catalog_url)
    with engine.connect() as conn:
        after = _dump(conn)
        assert schema.current(conn) == schema.head()
    for name, rows in before.items():
        added = {"videos": (None, None),  # revision 0007: window_seconds, hop_seconds (empty)
                 "ingest_jobs": (None,),  # revision 0005: owner (empty)
                 "ingest_runs": (None, None)}.get(name, ())  # revision 0008: encoder (unknown)
        assert after[name] == sorted((r + added for r in rows), key=repr), name
    assert set(after) - set(before) == ({"ingest_jobs", "tags", "summaries"} | LATER_TABLES) - set(before)
    # and the catalog reads them, and goes on writing after them
    assert catalog.video(1).size_bytes == 2**40 and catalog.counts()["snippets"] == 3
    ((ids, _),) = list(catalog.embeddings("lite"))
    assert list(ids) == [(1 << 20) | i for i in range(3)]
    assert catalog.reserve_video("/v/new.mp4", "c" * 64, 1, None) == 3
    catalog.engine.dispose()


def test_schema_versions_with_gaps_are_refused(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, 'a'), (3, 'c')"))
    with pytest.raises(CatalogError, match=r"versions \[1, 3\], with gaps"):
        schema.upgrade(engine)


def test_a_newer_schema_is_refused_with_what_to_do(engine):
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(CatalogError, match="'0099'.*upgrade vidsonar"):
        schema.upgrade(engine)


_OPENER = """
import os, sys, time
from pathlib import Path
from storage.catalog import Catalog
ready, go = Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.002)
Catalog(sys.argv[1]).engine.dispose()
"""


def test_processes_opening_a_new_catalog_at_once_migrate_it_once(catalog_url, tmp_path):
    """Two processes start migrating the same new catalog at the same instant: all open it,
    the tables are created once, the revision is recorded once."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, catalog_url, str(r), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in readies]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [rc for rc, _ in results] == [0, 0], "\n".join(err for _, err in results)
    engine = sa.create_engine(catalog_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [schema.head()]
    engine.dispose()


def test_a_failed_upgrade_leaves_the_catalog_as_it_was(engine, catalog_url, monkeypatch):
    """All revisions run in one transaction: one failing half-way rolls back every table."""
    real = migrations._v3_tags_and_summaries

    def broken(conn):
        real(conn)  # the tables are created, then the migration fails
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(migrations, "_v3_tags_and_summaries", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        Catalog(catalog_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    monkeypatch.setattr(migrations, "_v3_tags_and_summaries", real)
    Catalog(catalog_url).engine.dispose()
    with engine.connect() as conn:
        assert schema.current(conn) == schema.head() and sa.inspect(conn).has_table("tags")
