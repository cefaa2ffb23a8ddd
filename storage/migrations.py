"""Numbered schema migrations, applied in order and recorded in ``schema_version``.

Each migration is plain SQLAlchemy Core written against the schema as it was at that
version, so an old catalog upgrades step by step. Add a migration; never edit a shipped one.
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


def _v7_video_grid(conn: Connection) -> None:
    """Each video's snippet grid (window length and hop, seconds), so search knows whether its
    snippets overlap. NULL for videos ingested before: 4 s windows, hop = window. (Not named
    ``window``: a reserved word in PostgreSQL.)"""
    conn.execute(sa.text("ALTER TABLE videos ADD COLUMN window_seconds FLOAT"))
    conn.execute(sa.text("ALTER TABLE videos ADD COLUMN hop_seconds FLOAT"))


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial: videos, snippets, embeddings, ingest runs", _v1_initial),
    (2, "ingest jobs queued by the server", _v2_ingest_jobs),
    (3, "video tags and cached summaries", _v3_tags_and_summaries),
    (7, "video snippet grid: window and hop", _v7_video_grid),
]


def applied_versions(conn: Connection) -> set[int]:
    if not sa.inspect(conn).has_table("schema_version"):
        return set()
    return {row[0] for row in conn.execute(sa.text("SELECT version FROM schema_version"))}


def upgrade(conn: Connection) -> list[int]:
    """Apply, in order, every migration the catalog has not had; return the versions applied."""
    conn.execute(sa.text(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT)"))
    have = applied_versions(conn)
    applied = []
    for version, name, migrate in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version not in have:
            migrate(conn)
            conn.execute(sa.text("INSERT INTO schema_version (version, name) VALUES (:v, :n)"),
                         {"v": version, "n": name})
            applied.append(version)
    return applied
