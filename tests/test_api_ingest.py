"""Writes through the HTTP API: uploads, path ingestion, jobs (resumed after restart), delete."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from storage.catalog import Catalog
from storage.jobs import JobStore
from tests.fakes import hash_space
from vidsonar.home import Home

try:  # tests/ as a package or as a plain folder on sys.path
    from tests.test_api import KEY, SPACE, detail, settings_for, write_clip
except ImportError:
    from test_api import KEY, SPACE, detail, settings_for, write_clip

AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module", autouse=True)
def registered_hash_space():
    with hash_space(SPACE):
        yield


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("roots") / "footage"
    (root / "more").mkdir(parents=True)
    write_clip(root / "green.mp4", (30, 200, 30))
    write_clip(root / "more" / "yellow.mp4", (200, 200, 30))
    (root / "more" / "broken.mp4").write_text("not a video at all\n")
    return root


@pytest.fixture
def client(tmp_path, media):
    settings = settings_for(tmp_path / "home", ingest_roots=[media], max_upload_mb=0.25)
    with TestClient(create_app(settings)) as c:
        yield c


def wait_for(client, job_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def test_upload_streams_to_disk_and_ingests(client, media):
    data = (media / "green.mp4").read_bytes()
    resp = client.put("/api/uploads/green clip.mp4", content=data,
                      headers={**AUTH, "Content-Type": "video/mp4"})
    assert resp.status_code == 202, resp.text
    job = wait_for(client, resp.json()["id"])
    assert job["status"] == "done" and job["ingested"] == 1 and job["total"] == job["done"] == 1
    saved = Path(job["paths"][0])
    assert saved.name == "green clip.mp4" and saved.read_bytes() == data
    assert saved.is_relative_to(client.app.state.server.upload_dir)
    hits = client.get("/api/search", params={"q": "green"}).json()["hits"]
    assert hits and hits[0]["video_path"] == str(saved)
    again = client.put("/api/uploads/copy.mp4", content=data, headers=AUTH)
    job = wait_for(client, again.json()["id"])
    assert job["skipped"] == 1 and not Path(job["paths"][0]).exists()  # no second copy kept


@pytest.mark.parametrize("name", ["..%2F..%2Fevil.mp4", "a/b.mp4", "..\\evil.mp4",
                                  ".hidden.mp4", "%2Fetc%2Fevil.mp4", "%2E%2E", "x.mp4%00.txt",
                                  "a%0ab.mp4", "a.mp4%0a", "a%1b.mp4", "a" * 250 + ".mp4"])
def test_upload_refuses_path_traversal(client, name):
    # newlines once missed the route (a 404, or a trailing one dropped: a.mp4 saved); a name of
    # 254 bytes passed the check, then failed to open as ".NAME.part" (a 500)
    resp = client.put(f"/api/uploads/{name}", content=b"data", headers=AUTH)
    assert resp.status_code == 400, (name, resp.text)
    assert "bad file name" in detail(resp)


@pytest.mark.parametrize("name", ["../evil.mp4", "/etc/evil.mp4", "C:\\evil.mp4", " a.mp4", "a\x00.mp4"])
def test_safe_filename_refuses_paths(name):
    # clients such as httpx normalize '../' away before sending; curl --path-as-is does not
    from api.server.uploads import safe_filename
    from vidsonar.errors import InputError
    with pytest.raises(InputError, match="name"):
        safe_filename(name, [".mp4"])


@pytest.mark.parametrize("name, content_type, words", [
    ("notes.txt", "video/mp4", "'.txt'"),
    ("noext", "video/mp4", "(none)"),
    ("clip.mp4", "text/html", "'text/html'"),
])
def test_upload_refuses_wrong_type(client, name, content_type, words):
    resp = client.put(f"/api/uploads/{name}", content=b"data",
                      headers={**AUTH, "Content-Type": content_type})
    assert resp.status_code == 415 and words in detail(resp)


def test_upload_refuses_oversized_and_leaves_nothing(client):
    upload_dir = client.app.state.server.upload_dir
    big = b"\0" * (300 * 1024)  # limit is 0.25 MiB
    declared = client.put("/api/uploads/big.mp4", content=big, headers=AUTH)
    assert declared.status_code == 413 and "limit" in detail(declared)

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b"\0" * (64 * 1024)
    streamed = client.put("/api/uploads/big.mp4", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413
    assert not any(p.is_file() for p in upload_dir.rglob("*"))
    empty = client.put("/api/uploads/empty.mp4", content=b"", headers=AUTH)
    assert empty.status_code == 400 and "empty" in detail(empty)


def test_path_ingest_under_roots_with_per_file_errors(client, media):
    resp = client.post("/api/jobs", json={"paths": [str(media)]}, headers=AUTH)
    assert resp.status_code == 202, resp.text
    job = wait_for(client, resp.json()["id"])
    assert job["status"] == "done" and job["total"] == 3
    assert (job["ingested"], job["failed"]) == (2, 1)
    assert job["errors"][0]["path"].endswith("broken.mp4") and job["errors"][0]["error"]
    assert any(j["id"] == job["id"] for j in client.get("/api/jobs").json())


def test_path_ingest_refuses_paths_outside_roots(client, media, tmp_path):
    outside = tmp_path / "outside.mp4"
    write_clip(outside, (1, 2, 3))
    link = media / "more" / "escape.mp4"
    link.symlink_to(outside)
    loop = media / "more" / "loop.mp4"
    loop.symlink_to(loop)
    try:
        cases = [([str(outside)], 403, "outside the ingest roots"),
                 ([f"{media}/../{outside.name}"], 403, "outside the ingest roots"),
                 ([str(link)], 403, "outside the ingest roots"),  # symlinks are followed
                 (["relative/path.mp4"], 400, "absolute"),
                 ([f"{media}/{'a' * 300}.mp4"], 400, "File name too long"),  # an OSError: was 500
                 ([f"{media}/{'a' * 5000}.mp4"], 422, "4096"),  # longer than any path can be
                 ([str(loop)], 400, "symlink loop"),
                 (["~no-such-user-here/x.mp4"], 400, "unknown user"),
                 ([str(media / "missing.mp4")], 404, "no such file"),
                 ([], 422, "paths")]
        for paths, status, words in cases:
            resp = client.post("/api/jobs", json={"paths": paths}, headers=AUTH)
            assert resp.status_code == status, (paths, resp.text)
            assert words in detail(resp), (paths, detail(resp))
            assert len(detail(resp)) < 400  # a long path is shortened in the message
    finally:
        link.unlink()
        loop.unlink()


def test_a_folder_job_leaves_out_links_that_lead_outside_the_roots(client, media, tmp_path):
    """Naming a link is refused (above); one found inside a named folder is skipped, since
    the video would then be streamed from outside the roots to anyone."""
    outside = tmp_path / "private.mp4"
    write_clip(outside, (9, 9, 200))
    link = media / "more" / "escape.mp4"
    link.symlink_to(outside)
    try:
        resp = client.post("/api/jobs", json={"paths": [str(media)]}, headers=AUTH)
        job = wait_for(client, resp.json()["id"])
        assert job["status"] == "done" and job["total"] == 3  # green, yellow, broken: not the link
        paths = {v["path"] for v in client.get("/api/videos").json()}
        assert {Path(p).name for p in paths} == {"green.mp4", "yellow.mp4", "broken.mp4"}  # failed ones listed too
    finally:
        link.unlink()


def test_a_still_image_job_names_it_and_ingests_the_rest(tmp_path):
    """The server's jobs read through the same decoder: a JPEG named .mp4 and a one-frame GIF
    fail by name, the clip beside them is ingested."""
    from tests.conftest import moving_frames, write_picture
    root = tmp_path / "footage"
    root.mkdir()
    write_clip(root / "green.mp4", (30, 200, 30))
    write_picture(root / "photo.mp4", moving_frames(1), "JPEG")
    write_picture(root / "logo.gif", moving_frames(1), "GIF")
    with TestClient(create_app(settings_for(tmp_path / "home", ingest_roots=[root]))) as c:
        job = wait_for(c, c.post("/api/jobs", json={"paths": [str(root)]}, headers=AUTH).json()["id"])
    assert job["status"] == "done" and (job["ingested"], job["failed"]) == (1, 2)
    errors = {Path(e["path"]).name: e["error"] for e in job["errors"]}
    assert set(errors) == {"photo.mp4", "logo.gif"}
    assert "a still image (jpeg), not a video" in errors["photo.mp4"]
    assert "a still image (gif), not a video" in errors["logo.gif"]


def test_path_ingest_is_off_without_roots(tmp_path):
    with TestClient(create_app(settings_for(tmp_path / "home", warm_up=False))) as c:
        resp = c.post("/api/jobs", json={"paths": ["/tmp"]}, headers=AUTH)
        assert resp.status_code == 403 and "VIDSONAR_INGEST_ROOTS" in detail(resp)


def test_delete_video(client, media):
    data = (media / "more" / "yellow.mp4").read_bytes()
    job = wait_for(client, client.put("/api/uploads/y.mp4", content=data, headers=AUTH).json()["id"])
    video_id = client.get("/api/videos").json()[0]["id"]
    thumbs = Home.resolve(client.app.state.settings.home).thumbs / str(video_id)
    assert thumbs.is_dir()
    assert client.delete(f"/api/videos/{video_id}").status_code == 401
    resp = client.delete(f"/api/videos/{video_id}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert resp.json()["vectors_removed"] > 0 and resp.json()["file_removed"]
    assert not Path(job["paths"][0]).exists() and not thumbs.exists()
    assert client.get("/api/health").json()["index_vectors"] == 0
    assert client.delete(f"/api/videos/{video_id}", headers=AUTH).status_code == 404
    assert client.get(f"/api/videos/{video_id}/stream").status_code == 404


def test_a_delete_on_a_full_disk_is_507_and_leaves_the_index_whole(client, media, monkeypatch):
    """The index drops the vectors first; when the catalog then cannot commit, it takes them
    back, so this server's searches agree with the catalog (which every process reads)."""
    import sqlite3

    import sqlalchemy as sa
    data = (media / "green.mp4").read_bytes()
    wait_for(client, client.put("/api/uploads/g.mp4", content=data, headers=AUTH).json()["id"])
    video_id = client.get("/api/videos").json()[0]["id"]
    before = client.get("/api/health").json()["index_vectors"]
    assert before > 0

    def full(*_args, **_kwargs):
        raise sa.exc.OperationalError("DELETE ...", {}, sqlite3.OperationalError("database or disk is full"))
    monkeypatch.setattr(client.app.state.server.archive.catalog, "delete_video", full)
    resp = client.delete(f"/api/videos/{video_id}", headers=AUTH)
    assert resp.status_code == 507 and "no space left" in resp.json()["detail"], resp.text
    assert client.get("/api/health").json()["index_vectors"] == before
    monkeypatch.undo()
    assert client.delete(f"/api/videos/{video_id}", headers=AUTH).status_code == 200


def test_jobs_left_unfinished_resume_on_start(tmp_path, media):
    home = tmp_path / "home"
    catalog = Catalog(Home.resolve(home).db_url)
    jobs = JobStore(catalog)
    queued = jobs.create("paths", [str(media / "green.mp4")], SPACE)
    running = jobs.create("paths", [str(media / "more" / "yellow.mp4")], SPACE)
    jobs.start(running.id, total=1)  # as if the server died mid-job
    catalog.engine.dispose()
    with TestClient(create_app(settings_for(home, ingest_roots=[media]))) as c:
        for job_id in (queued.id, running.id):
            job = wait_for(c, job_id)
            assert job["status"] == "done" and job["ingested"] == 1, job
        assert wait_for(c, running.id)["attempts"] == 2
        assert c.get("/api/health").json()["videos"] == 2


def test_searches_are_served_while_ingesting(client, media):
    state = client.app.state.server
    statuses = set()
    with state.vision_lock:  # ingestion waits for the vision encoder: the job cannot end meanwhile
        job_id = client.post("/api/jobs", json={"paths": [str(media)]}, headers=AUTH).json()["id"]
        for _ in range(3):
            resp = client.get("/api/search", params={"q": "yellow"})
            statuses.add(resp.status_code if resp.status_code != 409 else "empty-index")
            assert client.get(f"/api/jobs/{job_id}").json()["status"] in ("queued", "running")
    assert statuses and statuses <= {200, "empty-index"}, statuses
    assert wait_for(client, job_id)["status"] == "done"
    assert client.get("/api/search", params={"q": "yellow"}).status_code == 200


def test_a_job_stopped_with_the_server_goes_back_to_the_queue(tmp_path, media):
    from api.server.worker import IngestWorker
    from search.archive import Archive
    archive = Archive(tmp_path / "home", SPACE)
    jobs = JobStore(archive.catalog)
    job = jobs.create("paths", [str(media)], SPACE)
    worker = IngestWorker(archive, jobs)
    worker.on_file = lambda outcome: worker.stop()  # the server stops during file 1 of 3
    worker.run_job(job.id)
    after = jobs.get(job.id)
    assert after.status == "queued" and after.done == 1
    assert [j.id for j in jobs.unfinished()] == [job.id]  # the next start resumes it


def test_a_video_another_run_is_ingesting_cannot_be_deleted(client, media):
    """A video still pending in a live run (a CLI ingest beside the server) is a 409 naming the
    job: deleting its row let SQLite give its id to the run's next file while the first was
    still read, mixing the two files' rows. Once no live run holds it, the delete goes through."""
    from indexer.report import IngestReport
    from indexer.stages import Planner
    from storage.items import ItemStore
    from storage.leases import take as take_lease
    catalog = client.app.state.server.archive.catalog
    jobs = JobStore(catalog)
    with take_lease(catalog):
        job = jobs.create("cli", [str(media)], SPACE)
        jobs.start(job.id, total=1)
        item = Planner(catalog, ItemStore(catalog), None, job.id, IngestReport()).plan_one(0, media / "green.mp4")
        assert item.action == "read" and catalog.video(item.video_id).status == "pending"
        resp = client.delete(f"/api/videos/{item.video_id}", headers=AUTH)
        assert resp.status_code == 409 and f"job {job.id}" in detail(resp), resp.text
        assert catalog.video(item.video_id) is not None
        jobs.finish(job.id)
    assert client.delete(f"/api/videos/{item.video_id}", headers=AUTH).status_code == 200


def test_a_failed_video_at_a_link_loop_can_be_deleted(client, tmp_path):
    """A file that failed because it is a link loop is listed (``GET /api/videos``) with that
    path; deleting it answered 500 (Path.resolve raises on a loop) after the row was gone."""
    loop = tmp_path / "a.mp4"
    loop.symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(loop)
    catalog = client.app.state.server.archive.catalog
    video_id = catalog.record_failure(str(loop), f"unreadable:{loop}", 0, "a symbolic link loop", None)
    resp = client.delete(f"/api/videos/{video_id}", headers=AUTH)
    assert resp.status_code == 200 and resp.json()["file_removed"] is False, resp.text
