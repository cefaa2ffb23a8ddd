"""The index's Milvus server stopped, frozen, restarted or refusing vidsonar while it runs.

Each test runs its own ``milvus-lite server`` (a real Milvus-protocol server, on a loopback
port from ``free_port``), which it stops by pid (SIGTERM: a port that refuses connections),
freezes (SIGSTOP: a server that no longer answers) and starts again on the same data folder.
The CLI says so in one line, and an ingest cut off finishes when run again, the collection
agreeing with the catalog; the server answers 503 naming the index server, never hangs, and
carries on without a restart, its ingest worker running a job cut off to the end. A server
that answers but refuses (a wrong token, a collection of another dimension) is told as that.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.server import create_app
from storage import changes
from storage.catalog import Catalog, Video
from storage.ids import pack_snippet_id
from storage.index_store import IndexStore
from storage.jobs import JobStore
from tests.conftest import REPO, VIDSONAR, free_port
from tests.test_api import KEY, SPACE, reachable, settings_for, write_clip
from tests.test_api_ingest import wait_for

pytestmark = pytest.mark.usefixtures("registered_hash_space")

AUTH = {"X-API-Key": KEY}
WAIT = 120.0  # the most any step may take on a loaded machine (a bound, not a measurement)
UNREACHABLE = "IndexUnreachableError"
TOKEN = "root:s3cret"  # the auth front's; no message may show it
CLIPS = 12  # in the ingest cut off by the outage


class MilvusServer:
    """A ``milvus-lite server`` subprocess on one port and data folder, stopped and started
    again by its pid. ``token``: behind Milvus's token check (tests/milvus_auth.py)."""

    def __init__(self, data: Path, token: str | None = None):
        self.data, self.token, self.port = data, token, free_port()
        self.url = f"milvus:http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("milvus-lite")
        args = ([sys.executable, "-m", "tests.milvus_auth", str(self.data / "db"), str(self.port),
                 self.token] if self.token else
                [str(exe), "server", "--data-dir", str(self.data / "db"), "--host", "127.0.0.1",
                 "--port", str(self.port)])
        log = open(self.data / "server.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + WAIT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"milvus-lite server exited: {self.log()}")
            try:
                client = self.client(timeout=2)
                client.list_collections(timeout=2)
                client.close()
                return
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    raise AssertionError(f"milvus-lite server did not answer: {self.log()}") from None
                time.sleep(0.2)

    def client(self, timeout: float = 10):
        """A client of the test's own: pymilvus shares one connection between the clients of
        an address, and vidsonar's must recover from an outage by itself."""
        from pymilvus import MilvusClient
        return MilvusClient(uri=self.url.removeprefix("milvus:"), token=self.token or "",
                            timeout=timeout, dedicated=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen one too
            self.proc.terminate()
            self.proc.wait(WAIT)
        self.proc = None

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def log(self) -> str:
        return (self.data / "server.log").read_text(errors="replace")[-2000:]


@pytest.fixture
def milvus(tmp_path) -> MilvusServer:
    pytest.importorskip("pymilvus", reason="pymilvus (vidsonar[milvus]) is not installed")
    if not Path(sys.executable).with_name("milvus-lite").exists():
        pytest.skip("the milvus-lite command (vidsonar[milvus]) is not installed")
    (tmp_path / "milvus").mkdir()
    server = MilvusServer(tmp_path / "milvus")
    server.start()
    yield server
    server.stop()


@contextmanager
def down(milvus: MilvusServer):
    milvus.stop()
    try:
        yield
    finally:
        milvus.start()


def wait_until(check, what: str, every: float = 0.05):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {WAIT:.0f} s")


def check_unreachable(message: str, milvus: MilvusServer) -> None:
    assert message.startswith(f"the index server {milvus.url} is unreachable: "), message
    assert "check that the Milvus server is running" in message, message


def in_thread(call):
    """``call()`` on a thread joined within WAIT: a hang fails the test instead of stalling it."""
    answer = {}
    worker = threading.Thread(target=lambda: answer.setdefault("value", call()), daemon=True)
    worker.start()
    worker.join(WAIT)
    assert not worker.is_alive(), "no answer: the call hangs"
    return answer["value"]


def test_after_a_call_finds_the_server_silent_one_call_at_a_time_waits_on_it(milvus, monkeypatch):
    """A frozen server: the first call waits its timeout; calls after it fail at once (not a
    timeout each, one after another) until the quiet time is over; then one goes through to
    see, the others still failing at once; once it answers, calls go through again. The quiet
    time runs on the test's clock."""
    from storage.backends import parse_index_url
    from storage.backends.milvus_backend import MilvusBackend
    from storage.backends.milvus_outage import Silence
    from vidsonar.errors import IndexUnreachableError
    monkeypatch.setenv("VIDSONAR_MILVUS_TIMEOUT", "1")
    backend = MilvusBackend(parse_index_url(milvus.url), "silence-test", 8)
    backend.open()
    now = [0.0]
    backend._silence = Silence(quiet=5.0, clock=lambda: now[0])

    def count() -> str:
        try:
            return f"counted {backend.count}"
        except IndexUnreachableError as exc:
            check_unreachable(str(exc), milvus)
            return "at once" if "calls fail at once" in str(exc) else str(exc)
    assert count() == "counted 0"
    milvus.freeze()
    try:
        assert "no answer within 1 s" in in_thread(count)  # waited its timeout
        now[0] += 4.9
        assert in_thread(count) == "at once"
        now[0] += 0.2  # the quiet time is over: of two calls, one goes through and waits
        answers = []
        calls = [threading.Thread(target=lambda: answers.append(count())) for _ in range(2)]
        for t in calls:
            t.start()
        for t in calls:
            t.join(WAIT)
        assert answers.count("at once") == 1 and any("no answer within 1 s" in a for a in answers), answers
    finally:
        milvus.thaw()

    def through() -> bool:  # a thawed server may take a while over what queued meanwhile
        now[0] += 5.1  # the quiet time over: this call goes through
        return in_thread(count) == "counted 0"
    wait_until(through, "a call answered once the server is back", every=0.2)
    assert in_thread(count) == "counted 0"  # and from then on every call goes through
    backend.close()


# --- the server ---------------------------------------------------------------------------
@pytest.fixture
def served(milvus, tmp_path) -> tuple[Path, Path]:
    """A home whose index is ``milvus``'s, with two clips ingested; a folder for more."""
    from search.archive import Archive
    home, media = tmp_path / "home", tmp_path / "media"
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    archive = Archive(home, SPACE, index=milvus.url)
    assert archive.ingestor(window=1.0).ingest(clips).ingested == 2
    archive.store.close()
    return home, tmp_path / "more"


def test_the_server_answers_503_while_milvus_is_frozen_or_down_and_carries_on_after(
        milvus, served, tmp_path, monkeypatch):
    from search.archive import Archive
    home, more = served
    green = write_clip(more / "green.mp4", (30, 200, 30))
    monkeypatch.setenv("VIDSONAR_MILVUS_TIMEOUT", "1")
    settings = settings_for(home, ingest_roots=[more], index=milvus.url)
    with TestClient(create_app(settings)) as client:
        video = client.get("/api/videos").json()[0]["id"]
        snippet = client.get("/api/search", params={"q": "red"}).json()["hits"][0]["snippet_id"]
        # frozen (SIGSTOP: its port still takes connections, nothing answers): each call gives
        # up after VIDSONAR_MILVUS_TIMEOUT, never a wait without end
        milvus.freeze()
        try:
            for path in ("/api/health", "/api/search?q=red"):
                resp = in_thread(lambda: client.get(path))
                assert resp.status_code == 503, (path, resp.status_code, resp.text[:300])
                check_unreachable(resp.json()["detail"], milvus)
                assert "no answer within 1 s" in resp.json()["detail"], resp.text
        finally:
            milvus.thaw()
        wait_until(lambda: client.get("/api/search", params={"q": "red"}).status_code == 200,
                   "searches once it answers again")
        # stopped: every route that needs the index says so, those that do not carry on
        with down(milvus):
            replies = {
                "health": client.get("/api/health"),
                "search": client.get("/api/search", params={"q": "red"}),
                "info": client.get("/api/info"),
                "ingest": client.post("/api/jobs", json={"paths": [str(green)]}, headers=AUTH),
                "upload": client.put("/api/uploads/up.mp4", content=green.read_bytes(),
                                     headers={**AUTH, "Content-Type": "video/mp4"}),
                "delete": client.delete(f"/api/videos/{video}", headers=AUTH),
            }
            for name, resp in replies.items():
                assert resp.status_code == 503, (name, resp.status_code, resp.text[:300])
                assert resp.json()["error"] == UNREACHABLE and resp.headers["Retry-After"], name
                check_unreachable(resp.json()["detail"], milvus)
            assert replies["health"].json()["status"] == "unavailable"
            for needs_no_index in ("/api/videos", f"/api/videos/{video}", "/api/space",
                                   f"/api/snippets/{snippet}/thumbnail", "/api/jobs"):
                assert client.get(needs_no_index).status_code == 200, needs_no_index
            assert not list((home / "uploads").iterdir())  # the refused upload left no file
            assert [j["kind"] for j in client.get("/api/jobs").json()] == ["cli"]  # nor a job
            scraped = client.get("/metrics")  # an outage is a reading, not a failed scrape
            assert scraped.status_code == 200, scraped.text[:300]
            assert reachable(scraped.text) == {"catalog": 1.0, "index": 0.0}, scraped.text
        # back, a new process that has not loaded the collection: no restart of ours needed
        wait_until(lambda: client.get("/api/health").status_code == 200, "health")
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and health["videos"] == 2, health
        assert health["index_vectors"] == health["snippets"]  # the refused delete removed nothing
        assert reachable(client.get("/metrics").text) == {"catalog": 1.0, "index": 1.0}
        hits = client.get("/api/search", params={"q": "red"}).json()["hits"]
        assert hits[0]["snippet_id"] == snippet
        # another process's commit reaches this server's searches
        other = Archive(home, SPACE, index=milvus.url)
        navy = write_clip(tmp_path / "other" / "navy.mp4", (0, 0, 250))
        assert other.ingestor(window=1.0).ingest([navy]).ingested == 1
        other.store.close()
        health = client.get("/api/health").json()
        assert health["videos"] == 3 and health["index_vectors"] == health["snippets"], health
        # and the ingest worker too
        submitted = client.post("/api/jobs", json={"paths": [str(green)]}, headers=AUTH).json()
        job = wait_for(client, submitted["id"], timeout=WAIT)
        assert job["status"] == "done" and job["ingested"] == 1, job


def test_a_job_cut_off_by_milvus_going_away_is_queued_again_and_finished(milvus, served):
    home, more = served
    for i, colour in enumerate([(30, 200, 30), (200, 200, 30), (30, 200, 200)]):
        write_clip(more / f"clip{i}.mp4", colour)
    stopped = threading.Event()
    with TestClient(create_app(settings_for(home, ingest_roots=[more], index=milvus.url))) as client:
        worker = client.app.state.server.worker
        counted = worker.on_file

        def after_a_file(outcome: str) -> None:
            counted(outcome)
            if not stopped.is_set():  # Milvus goes away between the job's first and second file
                milvus.stop()
                stopped.set()
        worker.on_file = after_a_file
        job_id = client.post("/api/jobs", json={"paths": [str(more)]}, headers=AUTH).json()["id"]
        try:
            assert stopped.wait(WAIT), "the job's first file never finished"
            wait_until(lambda: client.get("/api/health").status_code == 503, "the outage seen")
            health = client.get("/api/health").json()
            assert health["error"] == UNREACHABLE and health["worker_alive"], health
            job = client.get(f"/api/jobs/{job_id}").json()
            assert job["status"] in ("running", "queued") and not job["failed"], job
        finally:
            milvus.start()
        job = wait_for(client, job_id, timeout=WAIT)
        assert (job["status"], job["ingested"] + job["skipped"], job["failed"], job["attempts"]) == \
            ("done", 3, 0, 2), job
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and health["videos"] == 5 and health["worker_alive"]
        assert health["index_vectors"] == health["snippets"]


# --- the CLI ------------------------------------------------------------------------------
def cli_env(home: Path, milvus: MilvusServer, **more: str) -> dict:
    env = {**os.environ, "VIDSONAR_HOME": str(home), "VIDSONAR_INDEX": milvus.url}
    for name in ("VIDSONAR_SPACE", "VIDSONAR_MILVUS_TOKEN", "VIDSONAR_MILVUS_TIMEOUT"):
        env.pop(name, None)
    return {**env, **more}


def run_all(commands: dict[str, list[str]], env: dict | None = None,
            envs: dict[str, dict] | None = None) -> dict[str, tuple[str, str, int]]:
    """The CLI commands at once, in ``env`` (or each in its own, ``envs``): (out, err, code)."""
    runs = {name: subprocess.Popen([str(VIDSONAR), *args], env=env or envs[name], cwd=REPO,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name, args in commands.items()}
    return {name: (*run.communicate(timeout=WAIT), run.returncode) for name, run in runs.items()}


def error_lines(stderr: str) -> list[str]:
    """What a command said on stderr, less the tiny test model's warning about its weights."""
    return [line for line in stderr.strip().splitlines() if "No pretrained weights" not in line]


def ok_videos(catalog: Catalog) -> dict[int, tuple]:
    with catalog.session() as s:
        rows = s.execute(sa.select(Video.id, Video.content_hash, Video.ingested_at)
                         .where(Video.status == "ok")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def committed_count(path: Path) -> int:
    """How many videos a running ingest has committed to this SQLite catalog (read-only)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=WAIT)
    try:
        return conn.execute("SELECT count(*) FROM videos WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet
        return 0
    finally:
        conn.close()


@contextmanager
def catalog_held(path: Path):
    """A write transaction on the SQLite catalog: the run's next write waits (readers pass)."""
    conn = sqlite3.connect(path, timeout=WAIT, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.slow
def test_an_ingest_cut_off_by_milvus_going_away_finishes_when_run_again(milvus, tmp_path):
    media, home = tmp_path / "media", tmp_path / "home"
    for i in range(CLIPS):
        write_clip(media / f"clip{i:02d}.mp4", (15 * i, 200 - 10 * i, 90))
    env = cli_env(home, milvus)
    args = [str(VIDSONAR), "--space", "dual-test", "ingest", str(media), "--runner", "sequential",
            "--json"]
    run = subprocess.Popen(args, env=env, cwd=REPO, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        wait_until(lambda: run.poll() is not None or committed_count(home / "catalog.db"),
                   "a video committed", every=0.01)
        with catalog_held(home / "catalog.db"):  # the run waits at its next write meanwhile
            assert run.poll() is None, run.communicate()
            milvus.stop()
        out, err = run.communicate(timeout=WAIT)
        # the other commands say so in one line too, `serve` before it starts
        others = run_all({"info": ["--space", "dual-test", "info"],
                          "serve": ["--space", "dual-test", "serve", "--port", str(free_port())]},
                         env)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    for name, (out, err, code) in {"ingest": (out, err, run.returncode), **others}.items():
        lines = error_lines(err)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (name, code, err)
        check_unreachable(lines[0].removeprefix("error: "), milvus)
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    committed = ok_videos(catalog)
    assert 1 <= len(committed) < CLIPS
    cut, = JobStore(catalog).list()
    assert cut.status == "failed" and UNREACHABLE in cut.error, cut

    milvus.start()  # a new process: the collection is not loaded until vidsonar loads it
    # the collection missed the end of the run (its seq was not saved): the log says what
    assert saved_seq(milvus, "vidsonar_dual_test") < changes.last_seq(catalog)
    again = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=WAIT)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    k = len(committed)
    assert (report["ingested"], report["skipped"], report["failed"]) == (CLIPS - k, k, []), report
    videos = ok_videos(catalog)
    assert len(videos) == CLIPS and {v: videos[v] for v in committed} == committed  # kept as they were
    # the collection agrees with the catalog: every snippet's vector, the log's last seq
    store = IndexStore(catalog, "dual-test", 32, home / "index" / "dual-test", url=milvus.url)
    try:
        assert store.index.count == catalog.embedding_count("dual-test") > 0
        assert store.index.seq == changes.last_seq(catalog) and store.replayed == store.rebuilds == 0
        first = [pack_snippet_id(v, 0) for v in sorted(videos)]
        found, vectors = catalog.vectors_for(first, "dual-test")
        assert len(found) == CLIPS
        _, top = store.search(vectors, 1)
        assert list(top[:, 0]) == list(found)
    finally:
        store.close()


def saved_seq(milvus: MilvusServer, collection: str) -> int:
    """The change-log seq a collection says it reflects (``vidsonar.seq``)."""
    client = milvus.client()
    try:
        props = client.describe_collection(collection, timeout=10).get("properties") or {}
    finally:
        client.close()
    return int(props.get("vidsonar.seq", 0))


# --- a server that answers but refuses ----------------------------------------------------
@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> MilvusServer:
    """A Milvus server that checks tokens (TOKEN), holding a 64-d ``vidsonar_dual_test``."""
    pytest.importorskip("milvus_lite", reason="milvus-lite (vidsonar[milvus]) is not installed")
    server = MilvusServer(tmp_path_factory.mktemp("guarded"), token=TOKEN)
    server.start()
    client = server.client()
    client.create_collection("vidsonar_dual_test", dimension=64)
    client.close()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_server_that_refuses_is_told_as_that_not_as_unreachable(guarded, tmp_path):
    """A wrong token (`info`); a collection of another dimension (`serve`, before it starts: a
    space of that name made elsewhere with 64-d vectors, where dual-test's are 32-d)."""
    home = tmp_path / "home"
    envs = {"auth check failure": cli_env(home, guarded, VIDSONAR_MILVUS_TOKEN="root:n0t1t"),
            "serve 64-d": cli_env(home, guarded, VIDSONAR_MILVUS_TOKEN=TOKEN)}
    commands = {"auth check failure": ["--space", "dual-test", "info"],
                "serve 64-d": ["--space", "dual-test", "serve", "--port", str(free_port())]}
    for name, (out, err, code) in run_all(commands, envs=envs).items():
        lines = error_lines(err)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (name, code, err)
        assert "unreachable" not in lines[0] and "Traceback" not in err, (name, err)
        assert "s3cret" not in out + err and "n0t1t" not in out + err, name
        if name.endswith("64-d"):
            assert f"Milvus collection 'vidsonar_dual_test' at {guarded.url} holds 64-d vectors" \
                in lines[0] and "makes 32-d ones" in lines[0], (name, err)
        else:
            assert lines[0].startswith(f"error: the index server {guarded.url} refused vidsonar: "
                                       f"{name}"), (name, err)
            assert "VIDSONAR_MILVUS_TOKEN" in lines[0], err
