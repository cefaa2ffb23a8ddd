"""The catalog's PostgreSQL server stopped, restarted or out of reach while vidsonar runs.

This file's own cluster (``tests/pg.py``'s ``PgCluster``) is halted and resumed mid-test, as
an administrator's fast shutdown and start would: the CLI says so in one line, and an ingest
cut off finishes when run again; the server answers 503 naming the database, recovers
without a restart, and its ingest worker and index follower carry on; a job cut off is
queued again and finished. To put the outage in the middle of a write, a test holds a lock
on the change log (``vector_changes``) that lets readers through but makes the next commit
of a video wait, and halts the server once a writer waits on it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.pool import NullPool

from api.server import create_app
from storage.catalog import Catalog, Snippet, Video
from storage.index_store import IndexStore
from storage.jobs import JobStore
from storage.outage import unreachable
from tests.conftest import REPO, VIDSONAR, free_port
from tests.pg import PgCluster, running_cluster
from tests.test_api import KEY, SPACE, settings_for, write_clip
from tests.test_api_ingest import wait_for
from tests.test_backends import DIM, commit_video, unit
from vidsonar.errors import CatalogRefusedError, CatalogUnreachableError

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")

AUTH = {"X-API-Key": KEY}
PASSWORD = "s3cret"  # in every URL: trust authentication ignores it, and no message may show it
WAIT = 120.0  # the most any step may take on a loaded machine (a bound, not a measurement)
UNREACHABLE = "CatalogUnreachableError"


@pytest.fixture(scope="module")
def cluster():
    """A cluster of this file's own, which its tests stop and start again."""
    yield from running_cluster()


@pytest.fixture
def db(cluster, monkeypatch) -> str:
    """A new database's URL (with a password); connections are retried 0.3 s, and the
    cluster runs again after the test whatever happened in it."""
    if cluster.pid is None:
        cluster.resume()
    monkeypatch.setenv("VIDSONAR_DB_RETRY_SECONDS", "0.3")
    yield cluster.new_database().replace("postgres@", f"postgres:{PASSWORD}@")
    if cluster.pid is None:
        cluster.resume()


@contextmanager
def down(cluster: PgCluster):
    cluster.halt()
    try:
        yield
    finally:
        cluster.resume()


@contextmanager
def commits_held(url: str):
    """Hold the change log so that the next video commit waits (readers pass); the lock goes
    with the transaction, or with the server when the test halts it."""
    engine = sa.create_engine(url, poolclass=NullPool)
    conn = engine.connect()
    try:
        conn.execute(sa.text("LOCK TABLE vector_changes IN EXCLUSIVE MODE"))
        yield
    finally:
        try:
            conn.close()
        except sa.exc.DBAPIError:  # its server was halted under it
            pass
        engine.dispose()


def wait_until(check, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {WAIT:.0f} s")


def a_writer_waits(cluster: PgCluster) -> bool:
    """Whether some session waits for a lock (a commit held by ``commits_held``)."""
    engine = sa.create_engine(cluster.url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar() > 0
    finally:
        engine.dispose()


def check_unreachable(message: str, shown_url: str) -> None:
    assert message.startswith(f"the catalog database {shown_url} is unreachable: "), message
    assert "check that its server is running" in message and PASSWORD not in message, message


# --- the catalog ------------------------------------------------------------------------
def test_an_unreachable_catalog_is_named_and_its_engine_reconnects_when_back(cluster, db):
    catalog = Catalog(db)
    catalog.reserve_video("/v/a.mp4", "a", 1, None)
    assert "***" in catalog.display_url and PASSWORD not in catalog.display_url
    with down(cluster):
        for call in (catalog.counts, lambda: Catalog(db)):  # a statement, and opening one
            with pytest.raises(CatalogUnreachableError) as caught:
                call()
            check_unreachable(str(caught.value), catalog.display_url)
            assert "No such file or directory" in str(caught.value)  # the socket is gone
    assert catalog.counts()["pending"] == 1  # the same engine, without a restart


def test_a_closed_port_is_unreachable_but_a_server_refusing_us_is_not(cluster, db):
    with pytest.raises(CatalogUnreachableError, match="Connection refused"):
        Catalog(f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{free_port()}/vidsonar")
    with pytest.raises(CatalogRefusedError, match='database "nope" does not exist') as caught:
        Catalog(cluster.url("nope"))
    assert not isinstance(caught.value, CatalogUnreachableError)


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database is locked"),
                                   sqlite3.OperationalError("unable to open database file"),
                                   ConnectionRefusedError(111, "Connection refused")])
def test_only_a_database_servers_errors_can_say_it_is_unreachable(error):
    """SQLite's (a file: told by storage.operational as before) and the OS's are not."""
    assert unreachable(error) is None


def test_a_restart_within_the_retry_window_is_not_seen(cluster, db, monkeypatch):
    catalog = Catalog(db)
    catalog.reserve_video("/v/a.mp4", "a", 1, None)
    monkeypatch.setenv("VIDSONAR_DB_RETRY_SECONDS", str(WAIT))
    answer = {}

    def count():
        try:
            answer["counts"] = catalog.counts()
        except Exception as exc:  # noqa: BLE001 - shown by the assertion
            answer["error"] = exc
    reader = threading.Thread(target=count)
    with down(cluster):
        reader.start()
        reader.join(0.5)
        assert reader.is_alive(), answer  # still connecting, not failed
    reader.join(WAIT)
    assert answer.get("counts", {}).get("pending") == 1, answer


def test_a_delete_cut_off_by_the_outage_leaves_the_index_whole(cluster, db, tmp_path):
    """The index drops a video's vectors before the catalog commits the delete: when the
    database goes away in between, they are put back without it."""
    catalog = Catalog(db)
    store = IndexStore(catalog, "test", DIM, tmp_path / "index")
    rng = np.random.default_rng(0)
    commit_video(catalog, "test", "kept", unit(rng, 5), store=store)
    doomed, _ = commit_video(catalog, "test", "doomed", unit(rng, 7), store=store)
    before = store.index.count
    outcome = {}

    def delete():
        try:
            store.delete_video(doomed)
        except Exception as exc:  # noqa: BLE001 - checked below
            outcome["error"] = exc
    deleter = threading.Thread(target=delete)
    try:
        with commits_held(db):
            deleter.start()
            wait_until(lambda: a_writer_waits(cluster), "the delete waiting to commit")
            cluster.halt()
        deleter.join(WAIT)
        assert isinstance(outcome.get("error"), CatalogUnreachableError), outcome
        assert store.index.count == before == 12  # the vectors are back, the catalog still down
    finally:
        cluster.resume()
    assert catalog.video(doomed).status == "ok"  # the delete did not commit
    store.checkpoint()
    reopened = IndexStore(catalog, "test", DIM, tmp_path / "index")
    assert reopened.index.count == catalog.embedding_count("test") == 12 and reopened.rebuilds == 0


# --- the CLI ----------------------------------------------------------------------------
def cli_env(url: str, home: Path) -> dict:
    env = {**os.environ, "VIDSONAR_HOME": str(home), "VIDSONAR_DB_URL": url,
           "VIDSONAR_DB_RETRY_SECONDS": "0.3"}
    env.pop("VIDSONAR_SPACE", None)
    return env


@pytest.mark.slow
def test_cli_commands_say_in_one_line_that_the_catalog_is_unreachable(cluster, db, tmp_path):
    shown = Catalog(db).display_url  # the tables are made, as in a running archive
    clip = write_clip(tmp_path / "media" / "a.mp4", (200, 30, 30))
    env = cli_env(db, tmp_path / "home")
    commands = {"ingest": ["ingest", str(clip.parent)], "search": ["search", "a red square"],
                "info": ["info"], "jobs": ["jobs"], "serve": ["serve", "--port", str(free_port())]}
    with down(cluster):
        runs = {name: subprocess.Popen([str(VIDSONAR), *args], env=env, cwd=REPO, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for name, args in commands.items()}
        results = {name: (*run.communicate(timeout=WAIT), run.returncode) for name, run in runs.items()}
    for name, (out, err, code) in results.items():
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, (name, code, err)
        assert lines[0].startswith("error: "), (name, err)
        check_unreachable(lines[0].removeprefix("error: "), shown)
        assert PASSWORD not in out


def ok_videos(catalog: Catalog) -> dict[int, tuple]:
    with catalog.session() as s:
        rows = s.execute(sa.select(Video.id, Video.content_hash, Video.ingested_at)
                         .where(Video.status == "ok")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


@contextmanager
def file_held(url: str, path: Path):
    """An uncommitted ingestion item for ``path``: a run that plans the file waits on its
    unique key (``ItemStore.claim``) until the transaction ends, or its server does."""
    from storage.items import IngestItem
    engine = sa.create_engine(url, poolclass=NullPool)
    conn = engine.connect()
    try:
        conn.execute(sa.insert(IngestItem).values(path=str(path.resolve()), size_bytes=0,
                                                  mtime_ns=0, status="failed"))
        yield
    finally:
        try:
            conn.close()
        except sa.exc.DBAPIError:  # its server was halted under it
            pass
        engine.dispose()


@pytest.mark.slow
def test_an_ingest_cut_off_by_a_restart_loses_nothing_and_finishes_when_run_again(cluster, db, tmp_path):
    media, home = tmp_path / "media", tmp_path / "home"
    clips = [write_clip(media / f"clip{i}.mp4", (30 * i, 200 - 20 * i, 90)) for i in range(8)]
    catalog = Catalog(db)
    env = cli_env(db, home)
    # one file at a time (the default runner's batches span videos: clips 0-3 would wait in
    # one for more snippets, uncommitted, while clip4 is held)
    args = [str(VIDSONAR), "--space", "dual-test", "ingest", str(media), "--runner", "sequential",
            "--json"]
    try:
        with file_held(db, clips[4]):  # the run commits clips 0-3, then waits to plan clip4
            run = subprocess.Popen(args, env=env, cwd=REPO, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            wait_until(lambda: run.poll() is not None or (len(ok_videos(catalog)) >= 4
                                                          and a_writer_waits(cluster)),
                       "four videos committed and the run waiting on clip4")
            assert run.poll() is None, run.communicate()
            cluster.halt()  # with the run's transaction in flight
        out, err = run.communicate(timeout=WAIT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if cluster.pid is None:
            cluster.resume()
    assert run.returncode == 1 and "Traceback" not in err, err
    check_unreachable(err.strip().splitlines()[-1].removeprefix("error: "), catalog.display_url)
    committed = ok_videos(catalog)
    assert 4 <= len(committed) < 8

    again = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=WAIT)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    k = len(committed)
    assert (report["ingested"], report["skipped"], report["failed"]) == (8 - k, k, []), report
    videos = ok_videos(catalog)
    assert len(videos) == 8 and {k: videos[k] for k in committed} == committed  # kept as they were
    assert catalog.counts()["pending"] == catalog.counts()["failed"] == 0
    with catalog.session() as s:
        snippets = s.scalar(sa.select(sa.func.count()).select_from(Snippet))
        with_snippets = set(s.scalars(sa.select(Snippet.video_id).distinct()))
    assert with_snippets == set(videos) and catalog.embedding_count("dual-test") == snippets
    cut, finished = sorted(JobStore(catalog).list(), key=lambda j: j.id)
    assert (cut.status, finished.status) == ("failed", "done") and "interrupted" in cut.error
    store = IndexStore(catalog, "dual-test", 32, home / "index" / "dual-test")
    assert store.index.count == snippets and store.rebuilds == 0  # the saved index agrees


# --- the server ---------------------------------------------------------------------------
@pytest.fixture
def served(db, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A home whose catalog is on ``db``, with two clips ingested; a folder for more."""
    from search.archive import Archive
    monkeypatch.setenv("VIDSONAR_DB_URL", db)
    home, media = tmp_path / "home", tmp_path / "media"
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    archive = Archive(home, SPACE)
    assert archive.ingestor(window=1.0).ingest(clips).ingested == 2
    archive.catalog.engine.dispose()
    return home, tmp_path / "more"


def test_the_server_answers_503_while_the_catalog_is_down_and_carries_on_after(cluster, served, tmp_path):
    from search.archive import Archive
    home, more = served
    green = write_clip(more / "green.mp4", (30, 200, 30))
    with TestClient(create_app(settings_for(home, ingest_roots=[more]))) as client:
        shown = client.app.state.server.catalog.display_url
        video = client.get("/api/videos").json()[0]["id"]
        snippet = client.get("/api/search", params={"q": "red"}).json()["hits"][0]["snippet_id"]
        with down(cluster):
            replies = {
                "health": client.get("/api/health"),
                "videos": client.get("/api/videos"),
                "video": client.get(f"/api/videos/{video}"),
                "stream": client.get(f"/api/videos/{video}/stream"),
                "snippet": client.get(f"/api/snippets/{snippet}"),
                "search": client.get("/api/search", params={"q": "red"}),
                "info": client.get("/api/info"),
                "jobs": client.get("/api/jobs"),
                "ingest": client.post("/api/jobs", json={"paths": [str(green)]}, headers=AUTH),
                "upload": client.put("/api/uploads/up.mp4", content=green.read_bytes(),
                                     headers={**AUTH, "Content-Type": "video/mp4"}),
                "delete": client.delete(f"/api/videos/{video}", headers=AUTH),
                "metrics": client.get("/metrics"),
            }
            for name, resp in replies.items():
                assert resp.status_code == 503, (name, resp.status_code, resp.text[:300])
                assert resp.json()["error"] == UNREACHABLE and resp.headers["Retry-After"], name
                check_unreachable(resp.json()["detail"], shown)
            assert replies["health"].json()["status"] == "unavailable"
            for needs_no_catalog in ("/api/space", f"/api/snippets/{snippet}/thumbnail"):
                assert client.get(needs_no_catalog).status_code == 200, needs_no_catalog
            assert not list((home / "uploads").iterdir())  # the refused upload left no file
        health = client.get("/api/health").json()  # the database is back: no restart needed
        assert health["status"] == "ok" and health["videos"] == 2, health
        assert health["index_vectors"] == health["snippets"]  # the refused delete removed nothing
        # the index follower lives: another process's commit reaches this server's index
        other = Archive(home, SPACE)
        navy = write_clip(tmp_path / "other" / "navy.mp4", (0, 0, 250))
        assert other.ingestor(window=1.0).ingest([navy]).ingested == 1
        other.catalog.engine.dispose()

        def followed() -> bool:
            health = client.get("/api/health").json()
            return health["videos"] == 3 and health["index_vectors"] == health["snippets"]
        wait_until(followed, "the server following the other process's ingest")
        # and the ingest worker too
        submitted = client.post("/api/jobs", json={"paths": [str(green)]}, headers=AUTH).json()
        job = wait_for(client, submitted["id"])
        assert job["status"] == "done" and job["ingested"] == 1, job


def test_a_job_cut_off_by_the_outage_is_queued_again_and_finished(cluster, served, db):
    home, more = served
    for i, colour in enumerate([(30, 200, 30), (200, 200, 30), (30, 200, 200)]):
        write_clip(more / f"clip{i}.mp4", colour)
    with TestClient(create_app(settings_for(home, ingest_roots=[more]))) as client:
        try:
            with commits_held(db):
                job_id = client.post("/api/jobs", json={"paths": [str(more)]}, headers=AUTH).json()["id"]
                wait_until(lambda: a_writer_waits(cluster), "the job's first video waiting to commit")
                cluster.halt()  # with its transaction in flight
            assert client.get(f"/api/jobs/{job_id}").status_code == 503
            health = client.get("/api/health")
            assert health.status_code == 503 and health.json()["worker_alive"], health.text
        finally:
            cluster.resume()
        job = wait_for(client, job_id, timeout=WAIT)
        assert (job["status"], job["ingested"], job["failed"], job["attempts"]) == ("done", 3, 0, 2), job
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and health["videos"] == 5 and health["worker_alive"]
        assert health["index_vectors"] == health["snippets"]
