"""``ItemStore.claim``, the compare-and-set by which a run takes a file: two runs on one archive
(each on its own engine, as two processes are), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from storage.catalog import Catalog
from storage.items import PENDING, ItemStore
from storage.jobs import IngestJob, JobStore

PATH = "/footage/clip.mp4"
GONE_OWNER = f"{socket.gethostname()}:999999999"  # no such process on this host


@dataclass
class Run:
    catalog: Catalog
    items: ItemStore
    jobs: JobStore
    job: int

    def claim(self, gone=(), digest: str | None = None) -> bool:
        return self.items.claim(PATH, self.job, gone, size=10, mtime_ns=20,
                                content_hash=digest or str(self.job) * 64)


@pytest.fixture
def runs(catalog_url):
    """A function that starts a run (a running job of this live process) on its own engine."""
    started = []

    def start() -> Run:
        catalog = Catalog(catalog_url)
        jobs = JobStore(catalog)
        job = jobs.create("cli", [PATH], "hash").id
        jobs.start(job, total=1)
        started.append(Run(catalog, ItemStore(catalog), jobs, job))
        return started[-1]

    yield start
    for run in started:
        run.catalog.engine.dispose()


def test_a_file_a_live_run_holds_is_never_taken_from_it(runs):
    a, b = runs(), runs()
    assert a.claim()
    held = a.items.get(PATH)
    assert (held.status, held.job_id, held.hashes, held.attempts) == (PENDING, a.job, 1, 1)
    assert not b.claim()
    assert b.items.get(PATH) == held  # the loser wrote nothing
    assert a.claim()  # its own job takes it again (a server job resumed)
    assert a.items.get(PATH).attempts == 2


def test_a_file_is_taken_from_a_run_that_is_gone_or_finished(runs):
    a, b = runs(), runs()
    assert a.claim()
    with a.catalog.session() as s:  # A's process is killed
        s.execute(sa.update(IngestJob).where(IngestJob.id == a.job).values(owner=GONE_OWNER))
    gone = b.jobs.gone_running()
    assert gone == [a.job] and not b.claim()  # a list that does not name A yet: A is let be
    assert b.claim(gone)
    assert (b.items.get(PATH).job_id, b.items.get(PATH).content_hash) == (b.job, str(b.job) * 64)
    b.jobs.finish(b.job)  # a finished job holds nothing, even with its item still pending
    assert a.items.get(PATH).status == PENDING and runs().claim()


def test_a_run_started_after_the_gone_list_was_read_keeps_its_files(runs):
    """The planner caches the list of gone jobs for a few seconds: a run started since is not
    on it, so it counts as live (a cached list of live jobs would have let its file be taken)."""
    b = runs()
    gone = b.jobs.gone_running()
    c = runs()
    assert c.claim()
    assert not b.claim(gone) and b.items.get(PATH).job_id == c.job


def test_two_first_claims_of_a_new_path_at_once_make_one_winner(pg_url):
    """B finds no row, then A inserts it before B does: B's insert fails on the unique path and
    B's second try finds A's row held. (PostgreSQL only: on SQLite B's transaction holds the
    write lock from its UPDATE on, so A could not come in between.)"""
    a_catalog, b_catalog = Catalog(pg_url), Catalog(pg_url)
    jobs = JobStore(a_catalog)
    a_job, b_job = (jobs.create("cli", [PATH], "hash").id for _ in range(2))
    for job in (a_job, b_job):
        jobs.start(job, total=1)
    a = Run(a_catalog, ItemStore(a_catalog), jobs, a_job)
    b = Run(b_catalog, ItemStore(b_catalog), jobs, b_job)
    a_won = []
    opened = b_catalog.session

    @contextmanager
    def session_letting_a_in():
        with opened() as s:
            scalar = s.scalar

            def look_then_let_a_claim(*args, **kwargs):
                found = scalar(*args, **kwargs)
                if not a_won:
                    a_won.append(a.claim())
                return found

            s.scalar = look_then_let_a_claim
            yield s

    b_catalog.session = session_letting_a_in
    try:
        assert a_won == [] and not b.claim() and a_won == [True]
        assert a.items.get(PATH).job_id == a_job and len(a.items.all()) == 1
    finally:
        a_catalog.engine.dispose()
        b_catalog.engine.dispose()
