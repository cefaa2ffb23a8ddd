"""The catalog's schema changes, one numbered function each, run as Alembic revisions.

Each function is plain SQLAlchemy Core written against the schema as it was at that version,
so an old catalog upgrades step by step. Add a function; never edit a shipped one. Alembic
(``storage/schema.py``) runs them: revision ``000N`` in ``storage/alembic/versions/`` is a
thin wrapper calling ``_vN_...``, chained to ``000(N-1)``. To add version N, write ``_vN_what``
here, list it in ``MIGRATIONS``, and add ``storage/alembic/versions/000N_what.py``::

    '''what it adds'''
    from alembic import op
    from storage import migrations
    revision, down_revision = "000N", "000(N-1)"
    def upgrade() -> None:
        migrations._vN_what(op.get_bind())

Catalogs written before Alembic recorded the versions they had in ``schema_version``; on
open they are stamped at the matching revision and upgraded from there (``schema.py``).
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _v1_initial(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "ingest_runs", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("space", sa.String(100), nullable=False),
        sa.Column("ingested", sa.Integer, nullable=False, default=0),
        sa.Column("skipped", sa.Integer, nullable=False, default=0),
        sa.Column("failed", sa.Integer, nullable=False, default=0),
        sa.Column("snippets", sa.Integer, nullable=False, default=0),
        sa.Column("media_seconds", sa.Float, nullable=False, default=0.0),
        sa.Column("wall_seconds", sa.Float, nullable=False, default=0.0),
    )
    sa.Table(
        "videos", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("fps", sa.Float),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("rotation", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ingest_runs.id")),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "snippets", md,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("frame_times", sa.JSON, nullable=False),
    )
    sa.Table(
        "embeddings", md,
        sa.Column("snippet_id", sa.BigInteger, sa.ForeignKey("snippets.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("space", sa.String(100), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    md.create_all(conn)


def _v2_ingest_jobs(conn: Connection) -> None:
    """Ingestion jobs the server queues, so they survive a restart and report progress."""
    md = sa.MetaData()
    sa.Table(
        "ingest_jobs", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("space", sa.String(100), nullable=False),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("total", sa.Integer, nullable=False, default=0),
        sa.Column("done", sa.Integer, nullable=False, default=0),
        sa.Column("ingested", sa.Integer, nullable=False, default=0),
        sa.Column("skipped", sa.Integer, nullable=False, default=0),
        sa.Column("failed", sa.Integer, nullable=False, default=0),
        sa.Column("current", sa.Text),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
    )
    md.create_all(conn)


def _v3_tags_and_summaries(conn: Connection) -> None:
    """User tags on videos, and decoded summaries cached per (snippet, language, model)."""
    md = sa.MetaData()
    sa.Table("videos", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("snippets", md, sa.Column("id", sa.BigInteger, primary_key=True))
    sa.Table(
        "tags", md,
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tag", sa.String(200), primary_key=True, index=True),
    )
    sa.Table(
        "summaries", md,
        sa.Column("snippet_id", sa.BigInteger, sa.ForeignKey("snippets.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("lang", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    md.tables["tags"].create(conn)
    md.tables["summaries"].create(conn)


def _v4_vector_changes(conn: Connection) -> None:
    """The change log every index follows (storage.changes): one numbered entry per video
    added to a space or deleted."""
    md = sa.MetaData()
    sa.Table(
        "vector_changes", md,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("space", sa.String(100)),
        sa.Column("video_id", sa.Integer, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, default=0),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,  # never reuse a seq, even after the newest entry is gone
    )
    md.create_all(conn)


def _v5_ingest_items(conn: Connection) -> None:
    """One row per file ever offered for ingestion (CLI runs and server jobs alike).

    ``size_bytes`` and ``mtime_ns`` let a resumed run skip a finished file without hashing it
    again; ``status`` is pending while the file is in hand, so a crash leaves a trace to sweep.
    Jobs gain ``owner`` (host:pid), so a run can tell a live writer from a killed one.
    """
    md = sa.MetaData()
    sa.Table("videos", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("ingest_jobs", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "ingest_items", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("hashes", sa.Integer, nullable=False, default=0),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="SET NULL")),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("ingest_jobs.id", ondelete="SET NULL")),
        sa.Column("hashed_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    md.tables["ingest_items"].create(conn)
    conn.execute(sa.text("ALTER TABLE ingest_jobs ADD COLUMN owner VARCHAR(200)"))


def _v6_shots(conn: Connection) -> None:
    """Each video's shots as its detector found them (flash cuts merged), in order."""
    md = sa.MetaData()
    sa.Table("videos", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "shots", md,
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float),
    )
    md.tables["shots"].create(conn)


def _v7_video_grid(conn: Connection) -> None:
    """Each video's snippet grid (window length and hop, seconds), so search knows whether its
    snippets overlap. NULL for videos ingested before: 4 s windows, hop = window. (Not named
    ``window``: a reserved word in PostgreSQL.)"""
    conn.execute(sa.text("ALTER TABLE videos ADD COLUMN window_seconds FLOAT"))
    conn.execute(sa.text("ALTER TABLE videos ADD COLUMN hop_seconds FLOAT"))


def _v8_run_encoders(conn: Connection) -> None:
    """What made each ingest run's vectors (``encoders.identity``), so an archive can refuse to
    mix two models' vectors under one space name. NULL for runs before: unknown. The index on
    ``videos.run_id`` makes the check before every ingest one probe per run, not a scan."""
    conn.execute(sa.text("ALTER TABLE ingest_runs ADD COLUMN encoder_fingerprint VARCHAR(64)"))
    conn.execute(sa.text("ALTER TABLE ingest_runs ADD COLUMN encoder TEXT"))
    conn.execute(sa.text("CREATE INDEX ix_videos_run_id ON videos (run_id)"))


def _v9_owner_leases(conn: Connection) -> None:
    """One row per process owning work in the catalog (storage.leases): its owner string,
    its first and last heartbeat and its lease's length, in seconds on the database's clock,
    so an owner on another machine is alive while its lease is fresh."""
    md = sa.MetaData()
    sa.Table(
        "owner_leases", md,
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("beat", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    md.create_all(conn)


def _v10_video_id_mark(conn: Connection) -> None:
    """The largest video id the catalog ever gave out (``id_marks``, row ``videos``), so SQLite
    never gives a deleted video's id to the next one (it would take max(rowid) + 1, and a saved
    snippet id would then name another video; ``Catalog._put_video``). Seeded from every table
    that holds video ids: the change log keeps the ids of videos deleted before this
    revision. PostgreSQL's sequence never goes back; the row is written there too, unused."""
    md = sa.MetaData()
    marks = sa.Table(
        "id_marks", md,
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    marks.create(conn)
    held = [("videos", "id"), ("vector_changes", "video_id"), ("snippets", "video_id"),
            ("ingest_items", "video_id"), ("tags", "video_id"), ("shots", "video_id")]
    top = max(conn.execute(sa.text(f"SELECT max({column}) FROM {table}")).scalar() or 0
              for table, column in held)
    conn.execute(marks.insert().values(name="videos", value=top))


# every numbered migration; each has its Alembic revision (tests/test_catalog.py checks)
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial: videos, snippets, embeddings, ingest runs", _v1_initial),
    (2, "ingest jobs queued by the server", _v2_ingest_jobs),
    (3, "video tags and cached summaries", _v3_tags_and_summaries),
    (4, "vector change log followed by the indexes", _v4_vector_changes),
    (5, "ingestion items (resumable runs) and job owners", _v5_ingest_items),
    (6, "shots of each video", _v6_shots),
    (7, "video snippet grid: window and hop", _v7_video_grid),
    (8, "the encoder that made each run's vectors", _v8_run_encoders),
    (9, "owner leases: heartbeats of the processes owning work", _v9_owner_leases),
    (10, "the largest video id given out, never given again", _v10_video_id_mark),
]


def legacy_versions(conn: Connection) -> set[int]:
    """The versions a pre-Alembic catalog recorded in ``schema_version`` (empty if none)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return set()
    return {row[0] for row in conn.execute(sa.text("SELECT version FROM schema_version"))}


def revision_id(version: int) -> str:
    """The Alembic revision that wraps numbered migration ``version``."""
    return f"{version:04d}"
