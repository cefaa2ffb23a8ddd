"""Bring a catalog's schema up to date: Alembic revisions, run from code when it opens.

No ``alembic.ini``: the scripts ship inside the package (``storage/alembic/``) and run on the
connection given here. Two processes opening a new catalog at once must not both migrate:
on PostgreSQL the migration transaction takes an advisory lock first; on SQLite a
``filelock`` beside the database file serialises them, and the upgrade runs in one
``BEGIN IMMEDIATE`` transaction. Whoever waited then finds the schema current and does
nothing. On both, an upgrade that fails half-way leaves the catalog as it was.

A catalog written before Alembic (versions listed in ``schema_version``) is stamped at the
revision of its last version and upgraded from there: no table is rebuilt, no row lost.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import migrations
from vidsonar.errors import CatalogError

SCRIPTS = Path(__file__).with_name("alembic")
PG_LOCK_KEY = 0x7669_6473  # "vids": the advisory lock migrations hold on PostgreSQL


def _config(conn: Connection | None = None):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


@lru_cache(maxsize=1)
def _scripts():
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision: the wrapper of the last numbered migration (a test checks that
    the scripts agree), known without importing Alembic, so opening a current catalog is cheap."""
    return migrations.revision_id(max(m[0] for m in migrations.MIGRATIONS))


def current(conn: Connection) -> str | None:
    """The revision the catalog is at (None: new, or written before Alembic)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise CatalogError(f"the catalog's alembic_version holds several heads {rows}; "
                           "it was migrated by a branched build")
    return rows[0] if rows else None


def upgrade(engine: Engine) -> list[str]:
    """Migrate the catalog to ``head()``; return the revisions applied, oldest first."""
    with engine.connect() as conn:  # the common case: up to date, no lock taken
        if current(conn) == head():
            return []
    from alembic import command  # imported before the lock: it holds SQLite's write lock
    with _file_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        elif engine.dialect.name == "sqlite":
            # the driver would run DDL outside any transaction; this makes the whole upgrade
            # one transaction (all or nothing) that holds SQLite's write lock from the start
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        start = current(conn)
        if start is None:
            start = _adopt_legacy(conn)
        if start == head():
            return []
        _check_known(start, engine)
        command.upgrade(_config(conn), "head")
        return _between(start, head())


def require_current(engine: Engine) -> None:
    """For a read-only open, where migrating is a write: the catalog must be at ``head()``
    already; an older, newer or empty one is a CatalogError that says what to do."""
    with engine.connect() as conn:
        at = current(conn)
        legacy = migrations.legacy_versions(conn) if at is None else set()
    if at == head():
        return
    where = engine.url.render_as_string(hide_password=True)
    if at is None and not legacy:
        raise CatalogError(f"the catalog at {where} holds no vidsonar catalog: there is nothing "
                           "to open read-only")
    _check_known(at, engine)
    was = f"revision {at!r}" if at is not None else f"schema version {max(legacy)}"
    raise CatalogError(
        f"the catalog at {where} is at {was}, older than this vidsonar reads ({head()}), and a "
        "read-only archive is not migrated: upgrade it once from a writable copy (any vidsonar "
        "command there, e.g. `vidsonar info`), or search it with the vidsonar that wrote it")


def _adopt_legacy(conn: Connection) -> str | None:
    """Stamp a pre-Alembic catalog at the revision of its last numbered version."""
    versions = migrations.legacy_versions(conn)
    if not versions:
        return None
    last = max(versions)
    if versions != set(range(1, last + 1)):
        raise CatalogError(
            f"the catalog records schema versions {sorted(versions)}, with gaps: it was written "
            "by a development build; open it with that build, or start a new catalog")
    revision = migrations.revision_id(last)
    if revision not in {s.revision for s in _scripts().walk_revisions()}:
        raise CatalogError(f"the catalog is at schema version {last}, newer than this vidsonar "
                           f"knows ({head()}); upgrade vidsonar")
    from alembic import command
    command.stamp(_config(conn), revision)
    return revision


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is not None and revision not in {s.revision for s in _scripts().walk_revisions()}:
        raise CatalogError(f"the catalog at {engine.url.render_as_string(hide_password=True)} is "
                           f"at schema revision {revision!r}, which this vidsonar does not know "
                           f"(newest: {head()}); it was written by a newer version: upgrade vidsonar")


def _between(start: str | None, end: str) -> list[str]:
    """Revisions after ``start`` up to ``end``, oldest first."""
    chain = [s.revision for s in _scripts().walk_revisions(base="base", head=end)][::-1]
    return chain[chain.index(start) + 1:] if start in chain else chain


def _file_lock(engine: Engine):
    """A lock file beside a SQLite database file; nothing for other databases or :memory:."""
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:" or db.startswith("file:"):
        return contextlib.nullcontext()
    from filelock import FileLock
    return FileLock(f"{db}.migrate.lock", timeout=300)
