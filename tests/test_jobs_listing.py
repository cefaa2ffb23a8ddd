"""CLI runs and server jobs share one record: `GET /api/jobs` and `vidsonar jobs` list both."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from search.archive import Archive
from storage.jobs import JobStore
from tests.test_api import KEY, SPACE, settings_for, write_clip

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")


def test_cli_runs_are_jobs_the_server_lists_but_never_resumes(tmp_path):
    home = tmp_path / "home"
    clip = write_clip(tmp_path / "green.mp4", (30, 200, 30))
    report = Archive(home, SPACE).ingestor().ingest([clip, tmp_path / "missing.mp4"])
    assert report.ingested == 1 and len(report.failed) == 1
    jobs = JobStore(Archive(home, SPACE).catalog)
    stale = jobs.create("cli", [str(tmp_path)], SPACE)  # a CLI run still "running" (killed)
    jobs.start(stale.id, total=3)
    with TestClient(create_app(settings_for(home))) as client:
        listed = client.get("/api/jobs", headers={"X-API-Key": KEY}).json()
    by_id = {j["id"]: j for j in listed}
    first = by_id[stale.id - 1]
    assert first["kind"] == "cli" and first["status"] == "done"
    assert (first["total"], first["done"], first["ingested"], first["failed"]) == (2, 2, 1, 1)
    assert "missing.mp4" in first["errors"][0]["error"]
    assert by_id[stale.id]["status"] == "running"  # listed, and not picked up by the worker
    assert jobs.get(stale.id).attempts == 1
