"""Two runs offered the same file: the second leaves it to the first while the first's process
runs (no second encoding, no second change-log add), and takes it once that process is gone."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from indexer.discover import content_hash
from indexer.pipeline import Ingestor
from indexer.report import IngestReport
from indexer.stages.plan import READ, SKIP, Planner
from samples.footage import write_video
from storage.catalog import Catalog
from storage.index_store import IndexStore
from storage.items import PENDING, ItemStore
from storage.jobs import IngestJob, JobStore
from tests.conftest import moving_frames
from tests.fakes import HashSpace, hash_config


def test_a_file_another_live_run_holds_is_left_to_it(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path}/catalog.db")
    space = HashSpace(hash_config())
    store = IndexStore(catalog, space.name, space.dim, tmp_path / "index")
    path = write_video(tmp_path / "clip.mp4", moving_frames(48, 64, 48, seed=5), fps=12)
    # the first run, in a process that is alive (this one), has planned the file
    jobs, items = JobStore(catalog), ItemStore(catalog)
    first = jobs.create("cli", [str(path)], space.name).id
    jobs.start(first, total=1)
    digest, st = content_hash(path), path.stat()
    video = catalog.reserve_video(str(path), digest, st.st_size, None)
    items.put(str(path.resolve()), size=st.st_size, mtime_ns=st.st_mtime_ns, status=PENDING,
              job_id=first, content_hash=digest, video_id=video, hashed=True, attempt=True)

    def ingest():
        return Ingestor(catalog, space, store, tmp_path / "thumbs", shots="none").ingest([path])

    report = ingest()
    assert (report.ingested, report.skipped, space.calls) == (0, 1, 0)  # not read, not encoded
    assert catalog.video(video).status == "pending" and items.get(str(path.resolve())).job_id == first

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    with catalog.session() as s:  # the first run's process is gone
        s.execute(sa.update(IngestJob).where(IngestJob.id == first)
                  .values(owner=f"{socket.gethostname()}:{gone}"))
    report = ingest()
    assert (report.ingested, report.skipped) == (1, 0) and catalog.video(video).status == "ok"
    assert store.index.count == catalog.counts()["snippets"] > 0


def live_planner(url: str) -> Planner:
    """The planner of a run whose job is running in this (live) process, on its own engine, as
    another process would have it."""
    catalog = Catalog(url)
    jobs = JobStore(catalog)
    job = jobs.create("cli", [], "hash").id
    jobs.start(job, total=1)
    return Planner(catalog, ItemStore(catalog), catalog.start_run("hash"), job, IngestReport())


@pytest.mark.parametrize("early_read", ["items.get", "catalog.video_by_hash"])
def test_two_runs_planning_one_file_at_once_take_it_once(catalog_url, tmp_path, monkeypatch, early_read):
    """Run B reads the file's item (and then looks its bytes up) before run A takes the file, as
    when both plan it at the same instant: B must still leave it to A, and not overwrite A's claim."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"the same bytes offered to two runs\n" * 64)
    a, b = live_planner(catalog_url), live_planner(catalog_url)
    owner, name = early_read.split(".")
    store = getattr(b, owner)
    read = getattr(store, name)
    planned_by_a = []

    def read_then_let_a_plan(*args):
        found = read(*args)
        if not planned_by_a:  # A plans the whole file between B's read and B's decision
            planned_by_a.append(a.plan_one(0, path))
        return found

    monkeypatch.setattr(store, name, read_then_let_a_plan)
    planned_by_b = b.plan_one(0, path)
    assert (planned_by_a[0].action, planned_by_b.action) == (READ, SKIP)
    item = a.items.get(str(path.resolve()))
    assert (item.status, item.job_id, item.video_id) == (PENDING, a.job_id, planned_by_a[0].video_id)
    assert a.catalog.video(item.video_id).run_id == a.run_id  # B did not take the reservation over
    for planner in (a, b):
        planner.catalog.engine.dispose()


def test_a_twin_of_a_file_another_live_run_holds_is_left_to_it(catalog_url, tmp_path):
    """The same bytes at a second path: run B must not reserve and encode the video run A has in
    hand; the second path shares that video, and is planned again should A's video fail."""
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for p in (first, second):
        p.write_bytes(b"bytes offered at two paths to two runs\n" * 64)
    a, b = live_planner(catalog_url), live_planner(catalog_url)
    by_a, by_b = a.plan_one(0, first), b.plan_one(0, second)
    assert (by_a.action, by_b.action) == (READ, SKIP) and by_b.video_id == by_a.video_id
    assert a.catalog.video(by_a.video_id).run_id == a.run_id  # A's reservation stands
    twin = b.items.get(str(second.resolve()))
    assert (twin.status, twin.video_id) == ("done", by_a.video_id)
    digest = content_hash(first)
    a.catalog.record_failure(str(first), digest, first.stat().st_size, "decoding failed", a.run_id)
    JobStore(a.catalog).finish(a.job_id, "failed", error="decoding failed")
    again = b.plan_one(1, second)
    assert (again.action, again.video_id) == (READ, by_a.video_id)
    for planner in (a, b):
        planner.catalog.engine.dispose()
