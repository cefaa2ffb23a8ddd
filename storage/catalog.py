"""The catalog: videos, their snippets, the snippets' embeddings, and ingestion runs.

SQLAlchemy 2.x over any URL; SQLite by default. The catalog is the source of truth: FAISS
indices are derived from the ``embeddings`` table and can always be rebuilt from it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from storage import outage, schema
from storage.ids import MAX_VIDEO_ID, video_id_range
from storage.sqlite_read_only import read_only_url
from vidsonar.errors import CatalogError, InputError, NotFoundError


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class IngestRun(Base):
    __tablename__ = "ingest_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    space: Mapped[str] = mapped_column(sa.String(100))
    ingested: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    snippets: Mapped[int] = mapped_column(default=0)
    media_seconds: Mapped[float] = mapped_column(default=0.0)
    wall_seconds: Mapped[float] = mapped_column(default=0.0)
    # what made this run's vectors (encoders.identity; migration 8): NULL before it was recorded
    encoder_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    encoder: Mapped[str | None] = mapped_column(sa.Text)


class Video(Base):
    __tablename__ = "videos"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.Text)
    content_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    duration: Mapped[float | None]
    fps: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    rotation: Mapped[int | None]
    window_seconds: Mapped[float | None]  # snippet length (migration 7; NULL: 4 s)
    hop_seconds: Mapped[float | None]  # a snippet starts every hop s (NULL: = window, no overlap)
    status: Mapped[str] = mapped_column(sa.String(16))  # "ok" | "failed"
    error: Mapped[str | None] = mapped_column(sa.Text)
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ingest_runs.id"), index=True)  # migration 8
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    snippets: Mapped[list["Snippet"]] = relationship(
        back_populates="video", cascade="all, delete-orphan", passive_deletes=True)


class Snippet(Base):
    __tablename__ = "snippets"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    video_id: Mapped[int] = mapped_column(sa.ForeignKey("videos.id", ondelete="CASCADE"))
    idx: Mapped[int]
    start: Mapped[float]
    end: Mapped[float]
    frame_times: Mapped[list] = mapped_column(sa.JSON)
    video: Mapped[Video] = relationship(back_populates="snippets")


class Embedding(Base):
    __tablename__ = "embeddings"
    snippet_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("snippets.id", ondelete="CASCADE"), primary_key=True)
    space: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)


#: change-log operations (storage.changes)
ADD, DELETE = "add", "delete"


class VectorChange(Base):
    __tablename__ = "vector_changes"
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    space: Mapped[str | None] = mapped_column(sa.String(100))
    video_id: Mapped[int] = mapped_column(sa.Integer)
    op: Mapped[str] = mapped_column(sa.String(8))
    count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def record_change(session: Session, video_id: int, op: str, space: str | None = None,
           count: int = 0) -> int:
    """Add a change-log entry (storage.changes) inside the caller's transaction; its seq (assigned at flush)."""
    change = VectorChange(space=space, video_id=video_id, op=op, count=count)
    session.add(change)
    session.flush()
    return change.seq


@dataclass(frozen=True)
class VectorMaker:
    """One encoder that made some of a space's vectors (``Catalog.vector_makers``)."""
    fingerprint: str | None
    encoder: str | None
    videos: int | None  # None where not counted
    first_run: int
    last_run: int


@dataclass(frozen=True)
class SnippetRecord:
    """What the ingestion writer hands to the catalog for one snippet."""
    id: int
    idx: int
    start: float
    end: float
    frame_times: list[float]


SQLITE_BUSY_SECONDS = 30


def _next_video_id(s: Session) -> int:
    """SQLite: the id of a new video, one past the largest ever given out (``id_marks``,
    migration 10) or held, raising the mark in the caller's transaction. Without it SQLite
    takes max(rowid) + 1, so deleting the newest video would give its id, and its saved
    snippet ids, to the next one. The UPDATE reads and raises the mark in one statement under
    SQLite's write lock, held to the commit, so two processes never get the same id."""
    s.execute(sa.text("UPDATE id_marks SET value = max(value, coalesce((SELECT max(id) FROM videos), 0)) + 1 "
                      "WHERE name = 'videos'"))
    mark = s.execute(sa.text("SELECT value FROM id_marks WHERE name = 'videos'")).scalar()
    if mark is None:
        raise CatalogError("the catalog's id_marks table has lost its 'videos' row (the largest video "
                           "id given out; migration 10): put it back as the largest video id the "
                           "catalog ever held, or a deleted video's id could be given again")
    return mark


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_read_only_pragmas(dbapi_conn, _record) -> None:
    """No WAL switch (it rewrites the file's header). query_only is a second guard beside
    the URL's ``mode=ro``: SQLite refuses a write statement before it runs."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


#: a PostgreSQL session that refuses writes (``default_transaction_read_only``)
PG_READ_ONLY = {"options": "-c default_transaction_read_only=on"}


def _use_wal(cur) -> None:
    """Put the file in WAL mode (a file setting: once is enough). Two connections switching a
    new file together get "database is locked" at once, without the busy wait (SQLite refuses
    what could deadlock), about one time in 17 in a test opening a new catalog from two
    processes; so the switch is retried for up to ``SQLITE_BUSY_SECONDS``."""
    import sqlite3
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


#: what a catalog URL should look like, for the errors that refuse another
URL_FORMS = ("sqlite:///PATH (the default: the home's catalog.db) or "
             "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE")


def parse_catalog_url(url: str) -> sa.engine.URL:
    """``url`` as SQLAlchemy reads it, refused with an ``InputError`` naming what is wrong when it
    is not a URL, or names a database other than SQLite and PostgreSQL (the two tested)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise InputError(f"the catalog URL {url!r} (VIDSONAR_DB_URL) is not a database URL ({exc}); "
                         f"give {URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise InputError(f"the catalog URL {shown} (VIDSONAR_DB_URL) names a {backend} database: "
                         f"vidsonar's catalog is SQLite or PostgreSQL, give {URL_FORMS}")
    return parsed


class Catalog:
    """Open (and migrate) the catalog at a SQLAlchemy URL: SQLite (the default) or
    PostgreSQL (``postgresql+psycopg://...``), both tested.

    ``read_only``: open it without writing anything (a read-only archive, vidsonar.home):
    SQLite through its read-only URI (storage.sqlite_read_only), PostgreSQL in read-only
    transactions, and no migration: a schema older than this code is an error saying so.
    """

    def __init__(self, url: str, read_only: bool = False):
        self.url, self.read_only = url, read_only
        parsed = parse_catalog_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        # SQLite: wait up to 30 s for another process's lock (the driver's default is 5 s; a
        # first migration on a busy 2-core machine held it longer, and a second process opening
        # the new catalog at once failed with "database is locked")
        connect_args = {"timeout": SQLITE_BUSY_SECONDS} if sqlite else outage.connect_args(parsed)
        self._marks_video_ids = sqlite  # _next_video_id: PostgreSQL's sequence never goes back
        if read_only and sqlite:
            parsed = read_only_url(parsed)
        elif read_only and parsed.get_backend_name() == "postgresql":
            connect_args.update(PG_READ_ONLY)
        # a server database may restart under a long-lived process: test connections on checkout
        self.engine = sa.create_engine(parsed, future=True, pool_pre_ping=not sqlite,
                                       connect_args=connect_args)
        if sqlite:
            event.listen(self.engine, "connect",
                         _sqlite_read_only_pragmas if read_only else _sqlite_pragmas)
        else:  # a server that stops or restarts: retried connects, CatalogUnreachableError
            outage.guard(self.engine, self.display_url)
        if read_only:
            schema.require_current(self.engine)
        else:
            schema.upgrade(self.engine)  # Alembic; safe when several processes open it at once
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to print or serve."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self):
        with self._sessions.begin() as s:
            yield s

    # --- videos -------------------------------------------------------------------------
    def video_by_hash(self, content_hash: str) -> Video | None:
        with self.session() as s:
            return s.scalar(sa.select(Video).where(Video.content_hash == content_hash))

    def video(self, video_id: int) -> Video | None:
        with self.session() as s:
            return s.get(Video, video_id)

    def videos(self, status: str | None = None) -> list[Video]:
        with self.session() as s:
            q = sa.select(Video).order_by(Video.id)
            if status:
                q = q.where(Video.status == status)
            return list(s.scalars(q))

    def record_failure(self, path: str, content_hash: str, size: int, error: str,
                       run_id: int | None) -> int:
        """Record (or update) a failed video, so that failures are listed, never lost."""
        return self._put_video(path, content_hash, size, run_id, "failed", error, stamp=True)

    def reserve_video(self, path: str, content_hash: str, size: int, run_id: int | None) -> int:
        """A video row (status 'pending') whose id packs into snippet ids."""
        return self._put_video(path, content_hash, size, run_id, "pending", None, stamp=False)

    def _put_video(self, path: str, content_hash: str, size: int, run_id: int | None, status: str,
                   error: str | None, stamp: bool) -> int:
        """The row of these bytes (created if new) with the given status; its id."""
        for attempt in (1, 2):
            try:
                with self.session() as s:
                    video = s.scalar(sa.select(Video).where(Video.content_hash == content_hash))
                    if video is None:
                        video = Video(path=path, content_hash=content_hash, size_bytes=size,
                                      status=status)
                        if self._marks_video_ids:
                            video.id = _next_video_id(s)
                        s.add(video)
                    video.status, video.error, video.path, video.run_id = status, error, path, run_id
                    if stamp:
                        video.ingested_at = utcnow()
                    s.flush()
                    if video.id > MAX_VIDEO_ID:  # rolled back: a wrapped snippet id would name another video
                        raise CatalogError(
                            f"the catalog has given out every video id a snippet id can hold "
                            f"(1..{MAX_VIDEO_ID}); {path} cannot be added: start a new catalog")
                    return video.id
            except sa.exc.IntegrityError:
                # another process inserted these bytes between our select and insert: the
                # row is there now, so the second attempt updates it
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def complete_video(self, video_id: int, *, space: str, info: dict,
                       snippets: Sequence[SnippetRecord], vectors: np.ndarray,
                       keep_vectors: bool = True,
                       also: Sequence[Callable[[Session], None]] = ()) -> int:
        """Write a video's snippets and embeddings and mark it ok, in one transaction with its
        change-log entry (storage.changes); return that entry's seq. ``keep_vectors=False``
        leaves the float16 copies out, for a backend that keeps full vectors itself. ``also``:
        more writes for the same transaction (the writer's shots and ingest-item status), so a
        video is ok with all of them or with none, for one commit."""
        if len(snippets) != len(vectors):
            raise ValueError(f"{len(snippets)} snippets but {len(vectors)} vectors")
        with self.session() as s:
            video = s.get(Video, video_id)
            if video is None:  # deleted by another process while its file was read
                raise NotFoundError(f"video {video_id} was deleted while it was ingested; "
                                    "ingest the file again to add it")
            for key, value in info.items():
                setattr(video, key, value)
            s.execute(sa.delete(Snippet).where(Snippet.video_id == video_id))
            s.add_all(Snippet(id=r.id, video_id=video_id, idx=r.idx, start=r.start, end=r.end,
                              frame_times=r.frame_times) for r in snippets)
            s.flush()
            if keep_vectors:
                s.add_all(Embedding(snippet_id=r.id, space=space,
                                    vector=np.asarray(v, dtype=np.float16).tobytes())
                          for r, v in zip(snippets, vectors))
            video.status, video.error, video.ingested_at = "ok", None, utcnow()
            for write in also:
                write(s)
            return record_change(s, video_id, ADD, space, len(snippets))

    def move_video(self, video_id: int, path: str) -> None:
        """Record that video ``video_id``'s bytes are found at ``path`` now (its old path
        holds other bytes)."""
        with self.session() as s:
            s.execute(sa.update(Video).where(Video.id == video_id).values(path=path))

    def clear_snippets(self, video_id: int) -> None:
        """Drop a video's snippets and embeddings, keeping its row (and so its id)."""
        with self.session() as s:
            lo, hi = video_id_range(video_id)
            s.execute(sa.delete(Embedding).where(Embedding.snippet_id >= lo, Embedding.snippet_id < hi))
            s.execute(sa.delete(Snippet).where(Snippet.video_id == video_id))

    def delete_video(self, video_id: int) -> bool:
        """Delete a video's rows, with a ``delete`` change-log entry in the same transaction."""
        with self.session() as s:
            lo, hi = video_id_range(video_id)
            s.execute(sa.delete(Embedding).where(Embedding.snippet_id >= lo, Embedding.snippet_id < hi))
            s.execute(sa.delete(Snippet).where(Snippet.video_id == video_id))
            deleted = s.execute(sa.delete(Video).where(Video.id == video_id)).rowcount > 0
            if deleted:
                record_change(s, video_id, DELETE)
                if self._marks_video_ids:  # a row written by other means than _put_video too
                    s.execute(sa.text("UPDATE id_marks SET value = max(value, :id) WHERE name = 'videos'"),
                              {"id": video_id})
            return deleted

    # --- snippets and embeddings --------------------------------------------------------
    def snippets(self, ids: Iterable[int]) -> dict[int, Snippet]:
        """Snippets by id, with their videos loaded."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        with self.session() as s:
            rows = s.scalars(sa.select(Snippet).where(Snippet.id.in_(ids))
                             .options(sa.orm.joinedload(Snippet.video)))
            return {r.id: r for r in rows}

    def embeddings(self, space: str, batch: int = 50_000):
        """Yield (ids, float32 vectors) batches of every embedding in a space, by id."""
        with self.engine.connect() as conn:
            q = (sa.select(Embedding.snippet_id, Embedding.vector)
                 .where(Embedding.space == space).order_by(Embedding.snippet_id))
            result = conn.execution_options(yield_per=batch).execute(q)
            for part in result.partitions(batch):
                ids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
                vecs = np.stack([np.frombuffer(r[1], dtype=np.float16) for r in part])
                yield ids, vecs.astype(np.float32)

    def vectors_for(self, ids, space: str) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, float32 vectors) for the given snippet ids, in the order given."""
        ids = [int(i) for i in ids]
        with self.session() as s:
            rows = dict(s.execute(sa.select(Embedding.snippet_id, Embedding.vector)
                                  .where(Embedding.space == space, Embedding.snippet_id.in_(ids))).all())
        found = [i for i in ids if i in rows]
        if not found:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        vecs = np.stack([np.frombuffer(rows[i], dtype=np.float16) for i in found]).astype(np.float32)
        return np.array(found, np.int64), vecs

    def embedding_count(self, space: str) -> int:
        with self.session() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(Embedding)
                            .where(Embedding.space == space)) or 0

    def spaces(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(sa.select(Embedding.space).distinct()))

    # --- runs and counts ----------------------------------------------------------------
    def start_run(self, space: str, encoder_fingerprint: str | None = None,
                  encoder: str | None = None) -> int:
        """A new ingest run of ``space``, with what makes its vectors (fingerprint and words)."""
        with self.session() as s:
            run = IngestRun(space=space, encoder_fingerprint=encoder_fingerprint, encoder=encoder)
            s.add(run)
            s.flush()
            return run.id

    def vector_makers(self, space: str, count_videos: bool = True) -> list["VectorMaker"]:
        """Who made the vectors of ``space`` that the archive holds: per encoder fingerprint
        (None for runs from before it was recorded), the runs that made ok videos and, with
        ``count_videos``, how many (a scan of those videos: about a second at 1M; without it,
        one indexed probe per run, for the check before every ingest)."""
        run, video = IngestRun, Video
        if count_videos:
            query = (sa.select(run.encoder_fingerprint, sa.func.max(run.encoder), sa.func.count(video.id),
                               sa.func.min(run.id), sa.func.max(run.id))
                     .join(video, video.run_id == run.id)
                     .where(run.space == space, video.status == "ok"))
        else:
            has_ok = sa.select(video.id).where(video.run_id == run.id, video.status == "ok").exists()
            query = (sa.select(run.encoder_fingerprint, sa.func.max(run.encoder), sa.null(),
                               sa.func.min(run.id), sa.func.max(run.id))
                     .where(run.space == space, has_ok))
        query = query.group_by(run.encoder_fingerprint).order_by(sa.func.min(run.id))
        with self.session() as s:
            return [VectorMaker(*row) for row in s.execute(query).all()]

    def finish_run(self, run_id: int, **totals) -> None:
        with self.session() as s:
            run = s.get(IngestRun, run_id)
            for key, value in totals.items():
                setattr(run, key, value)
            run.finished_at = utcnow()

    def last_run(self) -> IngestRun | None:
        with self.session() as s:
            return s.scalar(sa.select(IngestRun).order_by(IngestRun.id.desc()).limit(1))

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            by_status = dict(s.execute(sa.select(Video.status, sa.func.count()).group_by(Video.status)).all())
            return {
                "videos": by_status.get("ok", 0),
                "failed": by_status.get("failed", 0),
                "pending": by_status.get("pending", 0),
                "snippets": s.scalar(sa.select(sa.func.count()).select_from(Snippet)) or 0,
                "hours": round((s.scalar(sa.select(sa.func.sum(Video.duration))
                                         .where(Video.status == "ok")) or 0.0) / 3600, 4),
            }
