"""Two servers on one catalog: a starting server takes up only the jobs no live process holds,
and of two starting at once, one takes each job (``JobStore.unfinished``, ``JobStore.adopt``)."""

from __future__ import annotations

import socket
import subprocess
import sys

import sqlalchemy as sa

from storage.catalog import Catalog
from storage.jobs import IngestJob, JobStore
from storage.owners import this_owner


def owned_by(catalog: Catalog, job_id: int, owner: str | None) -> None:
    with catalog.session() as s:
        s.execute(sa.update(IngestJob).where(IngestJob.id == job_id).values(owner=owner))


def test_a_starting_server_leaves_the_jobs_of_a_live_server_alone(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path}/catalog.db")
    jobs = JobStore(catalog)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        host = socket.gethostname()
        held, orphan, legacy = (jobs.create("paths", ["/x"], "hash").id for _ in range(3))
        mine = jobs.create("paths", ["/y"], "hash").id  # queued by this process
        owned_by(catalog, held, f"{host}:{other.pid}")  # queued by another server, still alive
        owned_by(catalog, orphan, f"{host}:{gone}")  # its server was killed
        owned_by(catalog, legacy, None)  # queued before jobs had owners
        jobs.start(orphan, total=1)
        owned_by(catalog, orphan, f"{host}:{gone}")
        assert [j.id for j in jobs.unfinished()] == [orphan, legacy, mine]
    finally:
        other.kill()
        other.wait()
    assert [j.id for j in jobs.unfinished()] == [held, orphan, legacy, mine]  # its server is gone now


def test_of_two_servers_adopting_one_job_one_wins(tmp_path):
    url = f"sqlite:///{tmp_path}/catalog.db"
    first, second = JobStore(Catalog(url)), JobStore(Catalog(url))
    job = first.create("upload", ["/u.mp4"], "hash").id
    owned_by(first.catalog, job, "elsewhere:1")
    seen = first.get(job).owner  # what both read before adopting
    assert first.adopt(job, seen) is True
    assert second.adopt(job, seen) is False  # the owner it saw is no longer the owner
    assert second.get(job).owner == this_owner()
    first.finish(job, "done")
    assert first.adopt(job, this_owner()) is False  # a finished job is nobody's to adopt
