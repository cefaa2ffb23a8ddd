"""A whole archive on PostgreSQL (``VIDSONAR_DB_URL``): ingest, the server's search, upload
jobs, tags, summaries and delete, against a real server started by ``tests/pg.py``."""

from __future__ import annotations


import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from tests.test_api import KEY, SPACE, settings_for, write_clip
from tests.test_api_ingest import wait_for

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")

AUTH = {"X-API-Key": KEY}


def test_archive_and_server_on_postgresql(pg_url, tmp_path, monkeypatch):
    from search.archive import Archive
    from storage.annotations import add_tags
    monkeypatch.setenv("VIDSONAR_DB_URL", pg_url)
    home, media = tmp_path / "home", tmp_path / "media"
    media.mkdir()
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    archive = Archive(home, SPACE)
    assert archive.catalog.engine.dialect.name == "postgresql"
    report = archive.ingestor(window=1.0).ingest(clips)
    assert report.ingested == 2 and not report.failed
    again = archive.ingestor(window=1.0).ingest(clips)  # same bytes: found by hash, skipped
    assert (again.ingested, again.skipped) == (0, 2)
    red = next(v.id for v in archive.catalog.videos() if v.path.endswith("red.mp4"))
    add_tags(archive.catalog, red, ["warm"])
    archive.catalog.engine.dispose()
    assert not (home / "catalog.db").exists()  # everything went to PostgreSQL

    with TestClient(create_app(settings_for(home))) as client:
        health = client.get("/api/health").json()
        assert health["videos"] == 2 and health["index_vectors"] == health["snippets"] > 0
        body = client.post("/api/search", json={"query": "red", "filters": {"tags": ["warm"]}}).json()
        assert body["hits"] and {h["video_id"] for h in body["hits"]} == {red}
        snippet = body["hits"][0]["snippet_id"]
        assert client.get(f"/api/snippets/{snippet}").json()["video_id"] == red
        summary = client.get(f"/api/snippets/{snippet}/summary", params={"lang": "fra_Latn"})
        assert summary.status_code == 200 and "[fra_Latn]" in summary.json()["text"]
        green = write_clip(tmp_path / "green.mp4", (30, 200, 30)).read_bytes()
        job = wait_for(client, client.put("/api/uploads/green.mp4", content=green,
                                       headers={**AUTH, "Content-Type": "video/mp4"}).json()["id"])
        assert job["status"] == "done" and job["ingested"] == 1, job
        assert len(client.get("/api/videos").json()) == 3
        deleted = client.delete(f"/api/videos/{red}", headers=AUTH)
        assert deleted.status_code == 200 and deleted.json()["vectors_removed"] > 0
        assert client.get(f"/api/videos/{red}").status_code == 404
        health = client.get("/api/health").json()
        assert health["videos"] == 2 and health["index_vectors"] == health["snippets"]
        assert client.get("/api/videos/227678137897025568768").status_code == 422
