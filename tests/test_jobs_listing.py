"""CLI runs and server jobs share one record: `GET /api/jobs` and `vidsonar jobs` list both."""

from __future__ import annotations

import json
import os
import socket

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import main
from api.server import create_app
from search.archive import Archive
from storage.jobs import IngestJob, JobStore
from tests.test_api import KEY, SPACE, settings_for, write_clip

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")

GONE = f"{socket.gethostname()}:999999999"  # no such process on this host


def test_cli_runs_are_jobs_the_server_lists_but_never_resumes(tmp_path):
    home = tmp_path / "home"
    clip = write_clip(tmp_path / "green.mp4", (30, 200, 30))
    report = Archive(home, SPACE).ingestor().ingest([clip, tmp_path / "missing.mp4"])
    assert report.ingested == 1 and len(report.failed) == 1
    jobs = JobStore(Archive(home, SPACE).catalog)
    stale = jobs.create("cli", [str(tmp_path)], SPACE)  # a CLI run still "running" (killed)
    jobs.start(stale.id, total=3)
    with jobs.catalog.session() as s:
        s.execute(sa.update(IngestJob).where(IngestJob.id == stale.id).values(owner=GONE))
    with TestClient(create_app(settings_for(home))) as client:
        listed = client.get("/api/jobs", headers={"X-API-Key": KEY}).json()
    by_id = {j["id"]: j for j in listed}
    first = by_id[stale.id - 1]
    assert first["kind"] == "cli" and first["status"] == "done"
    assert (first["total"], first["done"], first["ingested"], first["failed"]) == (2, 2, 1, 1)
    assert "missing.mp4" in first["errors"][0]["error"]
    assert by_id[stale.id]["status"] == "running"  # listed, and not picked up by the worker
    assert by_id[stale.id]["interrupted"] is True  # its process is gone
    assert by_id[stale.id]["owner"] == GONE  # where it ran
    assert not by_id[stale.id - 1]["interrupted"]
    assert jobs.get(stale.id).attempts == 1


def test_a_running_job_whose_process_is_gone_lists_as_interrupted_whatever_its_kind(tmp_path):
    home = tmp_path / "home"
    jobs = JobStore(Archive(home, SPACE).catalog)
    killed = {}
    for kind in ("cli", "paths", "upload"):
        job = jobs.create(kind, [str(tmp_path)], SPACE)
        jobs.start(job.id, total=2)
        killed[kind] = job.id
    live = jobs.create("cli", [str(tmp_path)], SPACE)
    jobs.start(live.id, total=1)  # owned by this process, which runs
    with jobs.catalog.session() as s:
        s.execute(sa.update(IngestJob).where(IngestJob.id.in_(killed.values())).values(owner=GONE))
    cli = ["--home", str(home), "--space", SPACE, "jobs"]

    text = CliRunner().invoke(main, cli)
    assert text.exit_code == 0, text.output
    lines = {int(line.split()[0]): line for line in text.output.splitlines()[1:]}
    assert "[interrupted: its process is gone; the next `vidsonar ingest`" in lines[killed["cli"]]
    for kind in ("paths", "upload"):
        assert "[interrupted: its process is gone; the server runs it again" in lines[killed[kind]]
    assert lines[live.id].endswith(f"[running on {socket.gethostname()}, pid {os.getpid()}]")
    listed = {j["id"]: j for j in json.loads(CliRunner().invoke(main, [*cli, "--json"]).output)["jobs"]}
    assert all(listed[i]["interrupted"] and listed[i]["status"] == "running" for i in killed.values())
    assert not listed[live.id]["interrupted"]
    # listing is a reading: the rows stay running, CLI runs and server jobs alike
    assert {jobs.get(i).status for i in killed.values()} == {"running"}
