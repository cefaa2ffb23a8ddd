"""Ray ingestion when the cluster's head is lost mid-run, on real clusters of ``ray start``
raylets (``tests.ray_cluster``): a head that holds the driver and a worker node of 2 CPUs.

The head's processes (its GCS, the cluster's control plane, and its raylet) are SIGKILLed
while the driver writes: the run ends within ``VIDSONAR_RAY_LOST_HEAD_SECONDS`` and a few
seconds, with one line naming the head, where Ray would end the driver with a line of its own
a minute later (or at once, silently, where the driver writes to the object store then). The
same command then fails at once while the head is down, and on a new cluster at the same
address does only what is missing, under the ids a clean run gives.

Its clusters are its own (the head is killed): not those of ``tests/test_ray_failures.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from samples.footage import write_video
from storage.catalog import Catalog
from storage.ids import pack_snippet_id
from storage.jobs import JobStore
from tests.conftest import REPO, VIDSONAR, free_port, moving_frames
from tests.ray_cluster import running_cluster
from tests.test_ingest_resume import completed

pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'vidsonar[ray]')")
CLIPS = 8  # clips of 10 s: 3 snippets each


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("footage")
    return [write_video(d / f"clip{i:02d}.mp4", moving_frames(120, 96, 64, seed=80 + i), fps=12)
            for i in range(CLIPS)]


def snippet_ids(db: Path) -> dict[str, list[int]]:
    """Each video's snippet ids, by path, as another process reads them."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT v.path, s.id FROM videos v JOIN snippets s ON s.video_id = v.id "
                            "WHERE v.status = 'ok' ORDER BY s.id").fetchall()
    ids: dict[str, list[int]] = {}
    for path, snippet in rows:
        ids.setdefault(path, []).append(snippet)
    return ids


def test_a_lost_head_ends_the_run_in_one_line_and_the_same_command_finishes_on_a_new_cluster(
        tmp_path, shared_cache, clips):
    port = free_port()
    home = tmp_path / "home"
    db = home / "catalog.db"
    command = [str(VIDSONAR), "--home", str(home), "ingest", *map(str, clips), "--runner", "ray",
               "--ray-address", f"127.0.0.1:{port}", "--json"]
    err_file = tmp_path / "lost.err"

    with running_cluster([], port=port) as cluster:
        cluster.add("cpu", ["--num-cpus", "2"])
        env = dict(cluster.env, VIDSONAR_RAY_LOST_HEAD_SECONDS="3")
        # 1. the head's process group SIGKILLed once a video is written (stderr to a file: Ray's
        # messages could fill a pipe no one reads)
        with open(tmp_path / "lost.out", "w") as out, open(err_file, "w") as err:
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 180
            while completed(db) < 1:
                assert proc.poll() is None, err_file.read_text()[-3000:]
                assert time.monotonic() < deadline, "the ingest made no progress"
                time.sleep(0.05)
            os.killpg(cluster.procs[0].pid, signal.SIGKILL)
            # bound: Ray's own end of the driver, were it not handled, comes at 60 s
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = err_file.read_text()
        assert proc.returncode == 1, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors == [err.splitlines()[-1]], err[-3000:]
        assert re.fullmatch(rf"error: the Ray head at 127\.0\.0\.1:{port} was lost mid-run: it has not "
                            r"answered for \d+ s \(VIDSONAR_RAY_LOST_HEAD_SECONDS\); the \d+ videos this run "
                            r"wrote are kept, and the same command, once the cluster is back, does only what is "
                            r"missing", errors[0]), errors[0]
        assert "Traceback" not in err and "Failed to connect to GCS" not in err, err[-3000:]
        kept = snippet_ids(db)
        assert 1 <= len(kept) < CLIPS and all(len(ids) == 3 for ids in kept.values())
        job = JobStore(Catalog(f"sqlite:///{db}")).list()[0]
        assert job.status == "failed" and job.error == "ClusterError: " + errors[0].removeprefix("error: ")

        # 2. the same command while the head is down: refused at once, nothing changed
        again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 1, again.stderr[-3000:]
        assert again.stderr.splitlines()[-1].startswith(
            f"error: no Ray cluster answers at --ray-address 127.0.0.1:{port} ("), again.stderr[-3000:]
        assert snippet_ids(db) == kept

    # 3. a new cluster at the same address: the same command does the rest, and only the rest
    with running_cluster([], port=port) as cluster:
        cluster.add("cpu", ["--num-cpus", "2"])
        done = subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["ingested"], report["skipped"], report["failed"]) == (CLIPS - len(kept), len(kept), [])
    catalog = Catalog(f"sqlite:///{db}")
    assert [(v.id, v.path, v.status) for v in catalog.videos()] == \
        [(i + 1, str(clip), "ok") for i, clip in enumerate(clips)]  # the ids of a clean run
    ids = snippet_ids(db)
    assert {p: ids[p] for p in kept} == kept
    assert ids == {str(clip): [pack_snippet_id(i + 1, k) for k in range(3)] for i, clip in enumerate(clips)}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM snippets JOIN embeddings ON snippet_id = id").fetchone() == \
            (3 * CLIPS,)
