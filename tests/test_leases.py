"""Who owns work and whether it is alive (``storage.owners``, ``storage.leases.Liveness``): owners
on another machine by their lease in the catalog, on SQLite and a real PostgreSQL; owners on
this machine by pid and start time, so a pid the OS gave to another process counts as gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.atomic import sweep_stale_temps
from storage.catalog import Catalog
from storage.items import ItemStore
from storage.jobs import IngestJob, JobStore
from storage.leases import Liveness, OwnerLease, db_epoch, take
from storage.owners import Owner, pid_space, this_owner
from vidsonar.errors import InputError

PATH = "/footage/clip.mp4"


def elsewhere(n: int) -> str:
    """An owner of this version on another machine."""
    return f"elsewhere-{n}:4242:987654:0123456789ab"


def leased(catalog: Catalog, owner: str, age: float, seconds: float = 60.0) -> None:
    """A lease of ``owner`` last renewed ``age`` seconds ago (on the database's clock)."""
    with catalog.session() as s:
        s.execute(sa.insert(OwnerLease).values(owner=owner, since=db_epoch() - age - 5,
                                               beat=db_epoch() - age, seconds=seconds))


def running_job(jobs: JobStore, owner: str, kind: str = "paths") -> int:
    job = jobs.create(kind, ["/footage"], "hash").id
    jobs.start(job, total=1)
    with jobs.catalog.session() as s:
        s.execute(sa.update(IngestJob).where(IngestJob.id == job).values(owner=owner))
    return job


def start_ticks(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 1:].split()[19])


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_owners_old_and_new_parse():
    assert Owner.parse("box:12") == Owner("box", 12) and Owner.parse("box:12").legacy
    new = Owner.parse("box:12:345:0a1b")
    assert new == Owner("box", 12, 345, "0a1b") and str(new) == "box:12:345:0a1b" and not new.legacy
    assert Owner.parse("box:12:345:0a1b:more") == new  # a later version's extra fields
    for bad in (None, "", "box", "box:x", ":12", "box:12:3", "box:12:x:0a1b", "box:12:3:"):
        assert Owner.parse(bad) is None, bad
    me = Owner.parse(this_owner())
    assert (me.host, me.pid, me.space) == (socket.gethostname(), os.getpid(), pid_space())
    assert me.start == start_ticks(os.getpid()) > 0
    assert me.checkable_here() and Liveness().alive(this_owner())


def test_a_live_pid_that_started_at_another_time_is_another_process(catalog_url, sleeper):
    """The pid of a killed owner, given by the OS to an unrelated process: the job is gone."""
    catalog = Catalog(catalog_url)
    jobs = JobStore(catalog)
    host, ticks = socket.gethostname(), start_ticks(sleeper.pid)
    same = f"{host}:{sleeper.pid}:{ticks}:{pid_space()}"
    reused = f"{host}:{sleeper.pid}:{ticks - 1}:{pid_space()}"
    old = f"{host}:{sleeper.pid}"  # an old owner: only its pid can be checked
    live, gone, legacy = (running_job(jobs, owner) for owner in (same, reused, old))
    assert jobs.gone_running() == [gone] and jobs.live_running() == [live, legacy]
    assert [j.id for j in jobs.unfinished()] == [gone]
    assert [j.interrupted(jobs.liveness) for j in map(jobs.get, (live, gone, legacy))] == [False, True, False]
    assert jobs.adopt(gone, reused) and jobs.get(gone).owner == this_owner()
    catalog.engine.dispose()


def test_a_killed_process_not_yet_reaped_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    owner = f"{socket.gethostname()}:{proc.pid}:{start_ticks(proc.pid)}:{pid_space()}"
    assert Liveness().alive(owner)
    proc.kill()
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{proc.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the killed process never became a zombie"
            time.sleep(0.01)  # dead, and not reaped: its parent (this process) waits on it below
        assert not Liveness().alive(owner) and not Liveness().alive(f"{socket.gethostname()}:{proc.pid}")
    finally:
        proc.wait()


def test_an_owner_on_another_machine_is_alive_while_its_lease_is_fresh(catalog_url, monkeypatch):
    catalog = Catalog(catalog_url)
    jobs = JobStore(catalog)
    fresh, expired, unleased, old, long = (running_job(jobs, o) for o in (
        elsewhere(1), elsewhere(2), elsewhere(3), "elsewhere-4:4242", elsewhere(5)))
    leased(catalog, elsewhere(1), age=1)
    leased(catalog, elsewhere(2), age=120)
    leased(catalog, elsewhere(5), age=90, seconds=120)  # its holder's lease is 120 s long
    monkeypatch.setenv("VIDSONAR_LEASE_SECONDS", "1")  # this reader's own length does not matter
    jobs = JobStore(catalog)
    assert jobs.gone_running() == [expired, unleased]  # no row: it exited (an old owner: cannot tell)
    assert jobs.live_running() == [fresh, old, long]
    assert [j.id for j in jobs.unfinished()] == [expired, unleased]
    interrupted = {j.id: j.interrupted(jobs.liveness) for j in jobs.list()}
    assert interrupted == {fresh: False, expired: True, unleased: True, old: False, long: False}
    assert jobs.adopt(expired, elsewhere(2)) and not jobs.adopt(expired, elsewhere(2))
    assert jobs.get(expired).owner == this_owner()
    catalog.engine.dispose()


def test_files_of_a_run_on_another_machine_are_taken_once_its_lease_expired(catalog_url):
    catalog = Catalog(catalog_url)
    jobs, items = JobStore(catalog), ItemStore(catalog)
    theirs = running_job(jobs, elsewhere(1), kind="cli")
    leased(catalog, elsewhere(1), age=0)
    assert items.claim(PATH, theirs, (), size=1, mtime_ns=2, content_hash="a" * 64)
    mine = running_job(jobs, this_owner(), kind="cli")

    def claim() -> bool:
        gone = JobStore(catalog).gone_running()  # as the planner reads it
        return items.claim(PATH, mine, gone, size=1, mtime_ns=2, content_hash="a" * 64)

    assert not claim() and items.get(PATH).job_id == theirs
    with catalog.session() as s:  # no renewal for two minutes: the process is gone
        s.execute(sa.update(OwnerLease).values(beat=db_epoch() - 120))
    assert claim() and items.get(PATH).job_id == mine
    assert JobStore(catalog).reap_dead_cli() == [theirs]
    catalog.engine.dispose()


def test_a_lease_is_one_row_per_process_until_its_last_holder_lets_go(catalog_url):
    catalog = Catalog(catalog_url)
    liveness = Liveness(catalog, cache_seconds=0)
    with take(catalog) as outer:
        assert outer.owner == this_owner()
        with take(catalog):  # the server's worker, and the ingest it runs
            assert list(liveness.leases()) == [this_owner()]
        age, seconds = liveness.leases()[this_owner()]
        assert 0 <= age < seconds == 60.0
    assert liveness.leases() == {}
    catalog.engine.dispose()


def test_a_bad_lease_length_is_refused_naming_the_variable(tmp_path, monkeypatch):
    catalog = Catalog(f"sqlite:///{tmp_path}/catalog.db")
    for bad in ("soon", "0", "-5", "nan", "inf"):
        monkeypatch.setenv("VIDSONAR_LEASE_SECONDS", bad)
        with pytest.raises(InputError, match=f"VIDSONAR_LEASE_SECONDS='{bad}'"):
            take(catalog)
    assert Liveness(catalog, cache_seconds=0).leases() == {}


def test_temporary_files_of_a_writer_whose_pid_was_reused_are_swept(tmp_path, sleeper):
    """A writer's temporary file names the writer's owner: one whose pid now runs another
    process is swept; a writer's of another pid space (another container) is left alone."""
    host, pid, ticks = socket.gethostname(), sleeper.pid, start_ticks(sleeper.pid)
    names = {"reused": f"@{host}@{pid}@{ticks + 7}@{pid_space()}@",
             "running": f"@{host}@{pid}@{ticks}@{pid_space()}@",
             "other space": f"@{host}@{pid}@{ticks + 7}@ffffffffffff@", "old": f"@{host}@{pid}@"}
    files = {k: tmp_path / f".index.faiss.{v}x1y2z3w4.tmp" for k, v in names.items()}
    for f in files.values():
        f.write_bytes(b"part of an index")
    assert sweep_stale_temps(tmp_path) == [files["reused"]]
    assert all(files[k].exists() for k in ("running", "other space", "old"))
