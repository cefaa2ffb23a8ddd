"""Ingestion jobs: what the server was asked to ingest, and how far it got.

Jobs live in the catalog (table ``ingest_jobs``, migration 2) rather than in memory, so a
job queued or running when the server stops is picked up again when it starts: re-running
a job is safe because ingestion skips footage already in the catalog by content hash.

Status moves ``queued -> running -> done | failed``; ``failed`` means the job itself could
not run (say the index was unusable). Files that fail alone are counted and listed in
``errors`` while the job goes on and ends ``done``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.catalog import Base, Catalog, utcnow
from storage.leases import Liveness
from storage.owners import this_owner

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
KINDS = ("upload", "paths", "cli")
#: jobs the server runs (and resumes); "cli" jobs record `vidsonar ingest` runs
SERVER_KINDS = ("upload", "paths")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default=QUEUED)
    space: Mapped[str] = mapped_column(sa.String(100))
    paths: Mapped[list] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    ingested: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    current: Mapped[str | None] = mapped_column(sa.Text)
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    owner: Mapped[str | None] = mapped_column(sa.String(200))  # who runs it (migration 5; storage.owners)


@dataclass(frozen=True)
class JobView:
    """A detached, read-only copy of a job row, safe to hand across threads."""
    id: int
    kind: str
    status: str
    space: str
    paths: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    total: int
    done: int
    ingested: int
    skipped: int
    failed: int
    current: str | None
    errors: list[dict]
    error: str | None
    attempts: int
    owner: str | None = None

    @classmethod
    def of(cls, row: IngestJob) -> "JobView":
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})

    def interrupted(self, liveness: Liveness) -> bool:
        """Marked running, but the process running it is gone (killed, or its lease on another
        machine expired), whatever its kind.

        Only a reading: the row stays ``running`` until the job is taken up again, by the next
        ``vidsonar ingest`` for a CLI run (``reap_dead_cli`` marks it failed) or by a starting
        server for its own kinds (it runs them again)."""
        return self.status == RUNNING and not liveness.alive(self.owner)


class JobStore:
    """Create, advance and list ingestion jobs in a catalog.

    A process records itself as a job's owner (``create``, ``start``, ``adopt``) only while it
    holds its lease in the catalog (``storage.leases.take``), as the ingestor and the server's
    worker do: other machines take an owner without a lease for gone."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.liveness = Liveness(catalog)

    def create(self, kind: str, paths: list[str], space: str) -> JobView:
        if kind not in KINDS:
            raise ValueError(f"job kind must be one of {KINDS}, got {kind!r}")
        with self.catalog.session() as s:
            job = IngestJob(kind=kind, status=QUEUED, space=space, paths=list(paths),
                            errors=[], total=0, done=0, ingested=0, skipped=0, failed=0, attempts=0,
                            owner=this_owner())  # the process that will run it (its server's queue)
            s.add(job)
            s.flush()
            return JobView.of(job)

    def get(self, job_id: int) -> JobView | None:
        with self.catalog.session() as s:
            job = s.get(IngestJob, job_id)
            return None if job is None else JobView.of(job)

    def list(self, limit: int = 50, status: str | None = None) -> list[JobView]:
        with self.catalog.session() as s:
            q = sa.select(IngestJob).order_by(IngestJob.id.desc()).limit(limit)
            if status:
                q = q.where(IngestJob.status == status)
            return [JobView.of(j) for j in s.scalars(q)]

    def unfinished(self) -> list[JobView]:
        """Queued and running server jobs no other live process holds, oldest first: what a
        starting server must (re)run (then ``adopt`` each).

        A job belongs to the process that queued or runs it (``owner``); another server on the
        same catalog, still running, keeps its own. This process's own jobs (a server started
        again in one process) and those of processes that are gone (killed on this host, or
        whose lease expired on another) are returned. CLI runs are
        never resumed by the server: their files are skipped or redone by the next
        `vidsonar ingest` of the same paths.
        """
        me = this_owner()
        with self.catalog.session() as s:
            q = (sa.select(IngestJob).where(IngestJob.status.in_([QUEUED, RUNNING]),
                                            IngestJob.kind.in_(SERVER_KINDS))
                 .order_by(IngestJob.id))
            jobs = [JobView.of(j) for j in s.scalars(q)]
        return [j for j in jobs if j.owner == me or not self.liveness.alive(j.owner)]

    def adopt(self, job_id: int, seen_owner: str | None) -> bool:
        """Make this process the job's owner if its owner is still ``seen_owner`` (as
        ``unfinished`` read it): of two servers starting on one catalog, one takes each job."""
        held = (IngestJob.owner.is_(None) if seen_owner is None else IngestJob.owner == seen_owner)
        with self.catalog.session() as s:
            return s.execute(sa.update(IngestJob)
                             .where(IngestJob.id == job_id, IngestJob.status.in_([QUEUED, RUNNING]), held)
                             .values(owner=this_owner())
                             .execution_options(synchronize_session=False)).rowcount == 1

    def counts(self) -> dict[str, int]:
        with self.catalog.session() as s:
            rows = s.execute(sa.select(IngestJob.status, sa.func.count()).group_by(IngestJob.status))
            found = dict(rows.all())
        return {status: found.get(status, 0) for status in (QUEUED, RUNNING, DONE, FAILED)}

    def start(self, job_id: int, total: int) -> None:
        """Mark a job running (owned by this process); a resumed job starts its counters afresh."""
        self._update(job_id, status=RUNNING, started_at=utcnow(), finished_at=None, total=total,
                     done=0, ingested=0, skipped=0, failed=0, errors=[], error=None, current=None,
                     attempts=IngestJob.attempts + 1, owner=this_owner())

    def live_running(self) -> list[int]:
        """Ids of running jobs whose owning process still runs (``storage.leases.Liveness``)."""
        return [job_id for job_id, owner in self._running() if self.liveness.alive(owner)]

    def gone_running(self) -> list[int]:
        """Ids of jobs still marked running whose owning process is gone (killed).

        What a planner may cache (``ItemStore.claim``): a job that is gone stays gone, while a
        cached list of live jobs would miss one started since, and take its files."""
        return [job_id for job_id, owner in self._running() if not self.liveness.alive(owner)]

    def reap_dead_cli(self) -> list[int]:
        """Mark CLI runs left 'running' by a process that is gone (killed) as failed."""
        dead = [job_id for job_id, owner in self._running("cli") if not self.liveness.alive(owner)]
        for job_id in dead:
            self.finish(job_id, FAILED, error="interrupted: the process running it is gone")
        return dead

    def _running(self, kind: str | None = None) -> list[tuple[int, str | None]]:
        """(id, owner) of the jobs marked running, of one kind or of all."""
        q = sa.select(IngestJob.id, IngestJob.owner).where(IngestJob.status == RUNNING)
        if kind is not None:
            q = q.where(IngestJob.kind == kind)
        with self.catalog.session() as s:
            return [tuple(row) for row in s.execute(q).all()]

    def advance(self, job_id: int, path: str, outcome: str, error: str | None = None) -> None:
        """Count one finished file; ``outcome`` is ingested, skipped or failed."""
        with self.catalog.session() as s:
            job = s.get(IngestJob, job_id)
            job.done += 1
            job.current = path
            if outcome == "ingested":
                job.ingested += 1
            elif outcome == "skipped":
                job.skipped += 1
            else:
                job.failed += 1
                job.errors = [*job.errors, {"path": path, "error": error or outcome}]

    def finish(self, job_id: int, status: str = DONE, error: str | None = None) -> None:
        self._update(job_id, status=status, error=error, finished_at=utcnow(), current=None)

    def requeue(self, job_id: int) -> None:
        """Put a job back in the queue (the server stopped while it ran)."""
        self._update(job_id, status=QUEUED, current=None)

    def _update(self, job_id: int, **values) -> None:
        with self.catalog.session() as s:
            s.execute(sa.update(IngestJob).where(IngestJob.id == job_id).values(**values))
