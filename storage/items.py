"""Ingestion items: one row per file offered for ingestion, shared by CLI runs and server jobs.

Table ``ingest_items`` (migration 5). A file's row remembers its size, mtime and content hash
from the last time it was hashed, so a resumed run skips a finished file whose path, size and
mtime are unchanged without reading its bytes again. ``status`` moves
``pending -> done | failed``: ``pending`` means a run had the file in hand; a row still pending
when no live run owns it marks a video that never completed, which the next run sweeps.
``hashes`` counts how often the file was hashed (what the crash test checks).
A run takes a file with ``ItemStore.claim``, a compare-and-set on its row, so that two runs
planning it at once cannot both take it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.catalog import Base, Catalog, utcnow
from storage.jobs import RUNNING, IngestJob

PENDING, DONE, FAILED = "pending", "done", "failed"


class IngestItem(Base):
    __tablename__ = "ingest_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.Text, unique=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    mtime_ns: Mapped[int] = mapped_column(sa.BigInteger)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    hashes: Mapped[int] = mapped_column(default=0)
    video_id: Mapped[int | None] = mapped_column(sa.ForeignKey("videos.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ingest_jobs.id", ondelete="SET NULL"))
    hashed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ItemView:
    """A detached copy of an item row."""
    id: int
    path: str
    size_bytes: int
    mtime_ns: int
    content_hash: str | None
    status: str
    error: str | None
    attempts: int
    hashes: int
    video_id: int | None
    job_id: int | None

    @classmethod
    def of(cls, row: IngestItem) -> "ItemView":
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


class ItemStore:
    """Read and advance ingestion items in a catalog."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def get(self, path: str) -> ItemView | None:
        with self.catalog.session() as s:
            row = s.scalar(sa.select(IngestItem).where(IngestItem.path == path))
            return None if row is None else ItemView.of(row)

    def all(self) -> list[ItemView]:
        with self.catalog.session() as s:
            return [ItemView.of(r) for r in s.scalars(sa.select(IngestItem).order_by(IngestItem.id))]

    def put(self, path: str, *, size: int, mtime_ns: int, status: str, job_id: int | None,
            content_hash: str | None = None, video_id: int | None = None,
            error: str | None = None, hashed: bool = False, attempt: bool = False) -> None:
        """Create or update the row of ``path``; ``hashed`` counts a hash, ``attempt`` a try."""
        with self.catalog.session() as s:
            row = s.scalar(sa.select(IngestItem).where(IngestItem.path == path))
            if row is None:
                row = IngestItem(path=path, attempts=0, hashes=0)
                s.add(row)
            row.size_bytes, row.mtime_ns, row.status, row.job_id = size, mtime_ns, status, job_id
            row.error, row.updated_at = error, utcnow()
            if content_hash is not None:
                row.content_hash = content_hash
            if video_id is not None:
                row.video_id = video_id
            if hashed:
                row.hashes = (row.hashes or 0) + 1
                row.hashed_at = utcnow()
            if attempt:
                row.attempts = (row.attempts or 0) + 1

    def claim(self, path: str, job_id: int | None, gone_jobs: Iterable[int], *, size: int,
              mtime_ns: int, content_hash: str) -> bool:
        """Take ``path`` for ``job_id``'s run, after hashing it; whether this run won it.

        The row becomes pending under ``job_id`` unless it is pending under another job that
        is running and not among ``gone_jobs`` (running jobs whose process is gone): then the
        row is left as it is. The database decides on the row as it is now, so of two runs
        planning the file at once one wins: a conditional UPDATE, whose row count says who
        won, or else an INSERT, which a concurrent insert of the path (IntegrityError on its
        unique key) turns into the UPDATE. Counts a hash and an attempt.
        """
        now = utcnow()
        taken = {"size_bytes": size, "mtime_ns": mtime_ns, "content_hash": content_hash,
                 "status": PENDING, "job_id": job_id, "error": None, "updated_at": now,
                 "hashed_at": now}
        held = self._held(job_id, gone_jobs)
        for attempt in (1, 2):
            try:
                with self.catalog.session() as s:
                    won = s.execute(
                        sa.update(IngestItem).where(IngestItem.path == path, sa.not_(held))
                        .values(**taken, hashes=sa.func.coalesce(IngestItem.hashes, 0) + 1,
                                attempts=sa.func.coalesce(IngestItem.attempts, 0) + 1)
                        .execution_options(synchronize_session=False)).rowcount
                    if won:
                        return True
                    if s.scalar(sa.select(IngestItem.id).where(IngestItem.path == path)) is not None:
                        return False  # held by a live run
                    s.add(IngestItem(path=path, **taken, hashes=1, attempts=1))
                    s.flush()
                    return True
            except sa.exc.IntegrityError:
                # another run inserted the path after our UPDATE found no row: the second
                # attempt updates that row, or leaves it to that run
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _held(job_id: int | None, gone_jobs: Iterable[int]):
        """SQL: the row is pending under another running job not known to be gone. Every term
        is true or false, never NULL, so that ``NOT`` of it is too."""
        running = sa.select(IngestJob.id).where(IngestJob.status == RUNNING)
        gone = sorted(set(gone_jobs))
        if gone:
            running = running.where(IngestJob.id.not_in(gone))
        terms = [IngestItem.status == PENDING, IngestItem.job_id.is_not(None),
                 IngestItem.job_id.in_(running)]
        if job_id is not None:
            terms.append(IngestItem.job_id != job_id)
        return sa.and_(*terms)

    def set_status(self, path: str, status: str, error: str | None = None,
                   video_id: int | None = None) -> None:
        with self.catalog.session() as s:
            self.set_status_in(s, path, status, error, video_id)

    @staticmethod
    def set_status_in(session, path: str, status: str, error: str | None = None,
                      video_id: int | None = None) -> None:
        """``set_status`` in the caller's transaction (the writer's ``complete_video``)."""
        values = {"status": status, "error": error, "updated_at": utcnow()}
        if video_id is not None:
            values["video_id"] = video_id
        session.execute(sa.update(IngestItem).where(IngestItem.path == path).values(**values))

    def holders(self, video_id: int) -> list[ItemView]:
        """The finished items (paths) whose bytes are video ``video_id``, oldest first."""
        with self.catalog.session() as s:
            q = (sa.select(IngestItem).where(IngestItem.video_id == video_id, IngestItem.status == DONE)
                 .order_by(IngestItem.id))
            return [ItemView.of(r) for r in s.scalars(q)]

    def pending_for(self, video_id: int) -> list[ItemView]:
        """The pending items (paths, of any run) whose bytes were reserved as ``video_id``."""
        with self.catalog.session() as s:
            q = sa.select(IngestItem).where(IngestItem.video_id == video_id, IngestItem.status == PENDING)
            return [ItemView.of(r) for r in s.scalars(q)]

    def pending(self) -> list[ItemView]:
        with self.catalog.session() as s:
            q = sa.select(IngestItem).where(IngestItem.status == PENDING).order_by(IngestItem.id)
            return [ItemView.of(r) for r in s.scalars(q)]

    def counts(self) -> dict[str, int]:
        with self.catalog.session() as s:
            found = dict(s.execute(sa.select(IngestItem.status, sa.func.count())
                                   .group_by(IngestItem.status)).all())
        return {status: found.get(status, 0) for status in (PENDING, DONE, FAILED)}
