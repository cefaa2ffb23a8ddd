"""The one writer: a background thread that runs ingestion jobs one at a time.

Jobs are rows in the catalog (``storage.jobs``), the queue only carries their ids, so on
start-up every job left queued or running by a previous server is queued again. Stopping
asks the running job to halt after the file in hand; that job goes back to ``queued`` and
resumes, skipping what it already ingested, when the server next starts.

While it runs, the worker holds the server's lease in the catalog (``storage.leases``): the
jobs it queues, adopts and runs are its server's, and a server on another machine sharing the
catalog leaves them alone while the lease is renewed, and takes them up once it expired.
The lease is taken before any job is adopted or queued, and let go when the worker stops.

A job cut off by its catalog database or its index's Milvus server going away
(``UnreachableError``) is neither failed nor dropped: the thread waits until both answer
again, puts the job back in the queue (``queued``, in the catalog too) and runs it again,
skipping what it committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from indexer.discover import discover
from storage.catalog import Video
from storage.jobs import DONE, FAILED, QUEUED, RUNNING, JobStore
from storage.leases import Lease, take as take_lease
from storage.owners import this_owner
from vidsonar.errors import UnreachableError

log = logging.getLogger(__name__)

#: the longest wait between two tries of an unreachable catalog database or index server
OUTAGE_POLL_SECONDS = 5.0


def _drop_duplicate_upload(path: Path) -> None:
    """An upload of footage already in the archive: keep no second copy on disk."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # the upload's own folder (see uploads.save_stream)
    except OSError:
        pass


class _Stopping(Exception):
    """Raised from the progress callback to end a job between two files."""


class IngestWorker:
    def __init__(self, archive, jobs: JobStore,
                 on_file: Callable[[str], None] | None = None, within: list[Path] | None = None):
        self.archive, self.jobs, self.on_file = archive, jobs, on_file
        self.within = within  # folders a job's files must resolve into (ingest roots, uploads)
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: Lease | None = None

    def start(self) -> list[int]:
        """Start the thread; return the ids of the jobs resumed from the catalog."""
        self._lease = take_lease(self.jobs.catalog)
        try:
            resumed = [job.id for job in self.jobs.unfinished() if self.jobs.adopt(job.id, job.owner)]
        except BaseException:
            self._lease.release()
            raise
        for job_id in resumed:
            self._queue.put(job_id)
        self._thread = threading.Thread(target=self._run, name="vidsonar-ingest", daemon=True)
        self._thread.start()
        if resumed:
            log.info("resuming ingest jobs %s", resumed)
        return resumed

    def submit(self, job_id: int) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._lease is not None and not self.alive:
            # a job still in hand (the join timed out) keeps it: it expires with the process
            self._lease.release()
            self._lease = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            job_id = self._queue.get()
            if job_id is None:
                break
            try:
                self.run_job(job_id)
            except UnreachableError as exc:
                self._after_outage(job_id, exc)
            except Exception:  # noqa: BLE001 - recording the failure failed too (a full disk):
                # the job stays running in the catalog, and is resumed at the next start
                log.exception("ingest job %d: its failure could not be recorded", job_id)

    def _after_outage(self, job_id: int, exc: UnreachableError) -> None:
        """Wait for the catalog database and the index server, then queue the job again (in
        the catalog and here). Stopped meanwhile, the job stays as the catalog has it, and the
        next start resumes it."""
        log.warning("ingest job %d interrupted: %s; it runs again once %s is back",
                    job_id, exc, exc.what)
        delay = 0.5
        while not self._stop.wait(delay):
            try:
                self.archive.store.ping()  # the index's Milvus server (nothing to ask of FAISS)
                job = self.jobs.get(job_id)
                if job is not None and job.owner != this_owner():
                    # a long outage let this server's lease lapse, and a server starting
                    # elsewhere took the job up (JobStore.adopt): it is that server's now
                    log.warning("ingest job %d was taken up by %s meanwhile; left to it",
                                job_id, job.owner)
                    return
                if job is not None and job.status in (QUEUED, RUNNING):
                    self.jobs.requeue(job_id)
            except UnreachableError as still:
                exc = still
                delay = min(delay * 2, OUTAGE_POLL_SECONDS)
                continue
            log.warning("ingest job %d queued again: %s is back", job_id, exc.what)
            self._queue.put(job_id)
            return

    def run_job(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status not in (QUEUED, RUNNING):
            return
        try:
            files = discover(job.paths, within=self.within)
            self.jobs.start(job_id, total=len(files))

            def progress(path: Path, outcome: str) -> None:
                error = self._failure_of(path) if outcome == "failed" else None
                self.jobs.advance(job_id, str(path), outcome, error)
                if job.kind == "upload" and outcome == "skipped":
                    _drop_duplicate_upload(path)
                if self.on_file:
                    self.on_file(outcome)
                if self._stop.is_set():
                    raise _Stopping

            self.archive.ingestor().ingest(files, progress=progress, job_id=job_id)
        except _Stopping:
            self.jobs.requeue(job_id)
            log.info("job %d stopped with the server; it resumes on the next start", job_id)
            return
        except UnreachableError:
            raise  # not the job's doing: _run waits for the server, then requeues
        except Exception as exc:  # noqa: BLE001 - a job's crash is recorded, the worker lives on
            log.exception("ingest job %d failed", job_id)
            self.jobs.finish(job_id, FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        self.jobs.finish(job_id, DONE)

    def _failure_of(self, path: Path) -> str | None:
        """The error the ingestor recorded in the catalog for a file that failed."""
        with self.archive.catalog.session() as s:
            return s.scalar(sa.select(Video.error)
                            .where(Video.path == str(path), Video.status == "failed")
                            .order_by(Video.ingested_at.desc()).limit(1))
