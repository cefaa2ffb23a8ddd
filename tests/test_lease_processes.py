"""Leases held by real processes: a `vidsonar ingest` subprocess renews its lease while it runs
and removes it when done; one killed on "another machine" (a process with its own host name,
``unshare -u``) holds its job and files while its lease is fresh, and is taken over once it
expired; a server's worker holds one while it runs and takes up the jobs of a server whose lease
expired. Short leases ($VIDSONAR_LEASE_SECONDS), waits bounded by a deadline, not by sleeps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import main
from api.server import create_app
from search.archive import Archive
from storage.catalog import Catalog
from storage.items import PENDING, ItemStore
from storage.jobs import IngestJob, JobStore
from storage.leases import Liveness, OwnerLease, db_epoch
from storage.owners import Owner, this_owner
from tests.conftest import REPO
from tests.test_api import KEY, SPACE, settings_for, write_clip

pytestmark = pytest.mark.usefixtures("registered_hash_space")

#: a `vidsonar ingest` (the real CLI) with the hash space, whose encoder waits for a file, so
#: that the run stays in the middle of its file until the test lets it go (or kills it)
INGEST = """
import sys, time
from pathlib import Path
from tests.fakes import HashSpace, hash_space
go = Path(sys.argv[1])
encode = HashSpace.encode_snippets
def gated(self, frames):
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return encode(self, frames)
HashSpace.encode_snippets = gated
from api.cli import main
with hash_space():
    main(sys.argv[2:])
"""


def until(what, timeout: float = 60.0, proc: subprocess.Popen | None = None):
    """Poll ``what()`` until it returns something true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the ingest exited with {proc.returncode}:\n{proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what.__doc__}"
        time.sleep(0.05)


def ingest(home: Path, clip: Path, go: Path, db_url: str, lease: float, host: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIDSONAR_DB_URL": db_url,
           "VIDSONAR_LEASE_SECONDS": str(lease)}
    cmd = [sys.executable, "-c", INGEST, str(go), "--home", str(home), "--space", SPACE, "ingest",
           str(clip), "--json"]
    if host is not None:  # its own UTS namespace: the same machine under another host name
        cmd = ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', host, *cmd]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def in_hand(catalog: Catalog, clip: Path):
    """the run's job running, its lease written, and the clip claimed"""
    jobs = JobStore(catalog).list(status="running")
    item = ItemStore(catalog).get(str(clip.resolve()))
    lease = lease_of(catalog, jobs[0].owner) if jobs else None
    if lease is not None and item is not None and item.status == PENDING and item.job_id == jobs[0].id:
        return jobs[0], lease


def lease_of(catalog: Catalog, owner: str) -> tuple[float, float] | None:
    """(since, beat) of the lease of ``owner``, on the database's clock"""
    with catalog.session() as s:
        return s.execute(sa.select(OwnerLease.since, OwnerLease.beat)
                         .where(OwnerLease.owner == owner)).first()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


@pytest.mark.slow  # a CLI subprocess
def test_an_ingest_renews_its_lease_while_it_runs_and_removes_it_when_done(tmp_path):
    home, go = tmp_path / "home", tmp_path / "go"
    clip = write_clip(tmp_path / "red.mp4", (200, 30, 30))
    url = f"sqlite:///{home / 'catalog.db'}"
    home.mkdir()
    proc = ingest(home, clip, go, url, lease=1.2)
    try:
        catalog = Catalog(url)
        job, (since, beat) = until(lambda: in_hand(catalog, clip), proc=proc)
        assert Owner.parse(job.owner).pid == proc.pid
        until(lambda: lease_of(catalog, job.owner)[1] > beat, proc=proc)  # renewed
        assert lease_of(catalog, job.owner)[0] == since
        go.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    assert json.loads(out)["ingested"] == 1
    assert lease_of(catalog, job.owner) is None  # removed at exit
    assert JobStore(catalog).get(job.id).status == "done"
    catalog.engine.dispose()


@pytest.mark.slow  # a CLI subprocess
def test_a_run_killed_on_another_machine_is_taken_over_once_its_lease_expired(catalog_url, tmp_path,
                                                                               monkeypatch):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to run a process under another host name")
    probe = subprocess.run(["unshare", "-u", "hostname", "probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no UTS namespace here (unshare -u needs CAP_SYS_ADMIN): {probe.stderr.strip()}")
    home, go = tmp_path / "home", tmp_path / "go"
    clip = write_clip(tmp_path / "red.mp4", (200, 30, 30))
    proc = ingest(home, clip, go, catalog_url, lease=4, host="other-machine")
    monkeypatch.setenv("VIDSONAR_DB_URL", catalog_url)
    try:
        catalog = Catalog(catalog_url)
        job, _ = until(lambda: in_hand(catalog, clip), proc=proc)
        owner = Owner.parse(job.owner)
        assert owner.host == "other-machine" and not owner.checkable_here()
        cli = ["--home", str(home), "--space", SPACE, "jobs", "--json"]
        listed = json.loads(CliRunner().invoke(main, cli).output)["jobs"][0]
        assert (listed["id"], listed["alive"], listed["interrupted"]) == (job.id, True, False)
        report = Archive(home, SPACE).ingestor(window=1.0).ingest([clip])
        assert (report.ingested, report.skipped) == (0, 1)  # left to the live run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert lease_of(catalog, job.owner) is not None  # a killed process removes nothing
    until(lambda: job.id in JobStore(catalog).gone_running(), timeout=60)  # its lease expired
    listed = {j["id"]: j for j in json.loads(CliRunner().invoke(main, cli).output)["jobs"]}
    assert (listed[job.id]["status"], listed[job.id]["interrupted"]) == ("running", True)
    report = Archive(home, SPACE).ingestor(window=1.0).ingest([clip])
    assert (report.ingested, report.skipped) == (1, 0)  # its claimed file taken up
    killed = JobStore(catalog).get(job.id)
    assert killed.status == "failed" and "interrupted" in killed.error
    catalog.engine.dispose()


def test_a_starting_server_takes_up_the_jobs_of_a_server_whose_lease_expired(tmp_path):
    """And leaves those of one whose lease is fresh; its own worker holds a lease while it runs."""
    home, root = tmp_path / "home", tmp_path / "footage"
    root.mkdir()
    clip = write_clip(root / "green.mp4", (30, 200, 30))
    catalog = Archive(home, SPACE).catalog
    jobs = JobStore(catalog)
    owners = {"expired": "server-b:7:1234:0123456789ab", "fresh": "server-c:7:1234:0123456789ab"}
    with catalog.session() as s:
        for name, owner in owners.items():
            s.execute(sa.insert(OwnerLease).values(owner=owner, since=db_epoch() - 400, seconds=60.0,
                                                   beat=db_epoch() - (300 if name == "expired" else 0)))

    def owned(kind: str, name: str, running: bool = True) -> int:
        job = jobs.create(kind, [str(clip)], SPACE).id
        if running:
            jobs.start(job, total=1)
        with catalog.session() as s:
            s.execute(sa.update(IngestJob).where(IngestJob.id == job).values(owner=owners[name]))
        return job

    def get(client, job: int) -> dict:
        return client.get(f"/api/jobs/{job}", headers={"X-API-Key": KEY}).json()

    cli = {name: owned("cli", name) for name in owners}  # CLI runs: listed, never resumed
    queued = owned("paths", "fresh", running=False)  # server C's queue
    with TestClient(create_app(settings_for(home, ingest_roots=[str(root)]))) as client:
        assert this_owner() in Liveness(catalog, cache_seconds=0).leases()  # the worker's
        assert [(get(client, cli[n])["status"], get(client, cli[n])["interrupted"])
                for n in ("expired", "fresh")] == [("running", True), ("running", False)]
    assert this_owner() not in Liveness(catalog, cache_seconds=0).leases()  # let go at shutdown

    taken = owned("paths", "expired")  # server B was running it when it was killed
    with TestClient(create_app(settings_for(home, ingest_roots=[str(root)]))) as client:
        done = until(lambda: (got := get(client, taken))["status"] == "done" and got)
        assert (done["ingested"], done["interrupted"]) == (1, False)
        assert jobs.get(taken).owner == this_owner()
        assert (get(client, queued)["status"], jobs.get(queued).owner) == ("queued", owners["fresh"])
        # the run settled the expired CLI run (storage.jobs.reap_dead_cli), not the fresh one
        assert [get(client, cli[n])["status"] for n in ("expired", "fresh")] == ["failed", "running"]
    catalog.engine.dispose()
