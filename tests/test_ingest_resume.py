"""A `vidsonar ingest` killed with SIGKILL at seeded moments, then finished, equals a clean run.

Real subprocesses of the CLI with the real lite space (a deterministic model, so a clean run
in this process is the reference), each killed once the catalog shows k completed videos plus
a short delay (k and the delay drawn from a seeded generator), then run to the end. Afterwards: the same videos, snippet ids,
time codes, vectors and thumbnails as an uninterrupted run; no pending rows or items, no
orphan thumbnail folders; the killed runs' jobs are marked interrupted; and a re-run hashes
none of the finished files.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from samples.footage import write_video
from storage.catalog import Catalog
from storage.items import ItemStore
from tests.conftest import REPO, VIDSONAR, moving_frames, run_cli
from tests.test_ingest_runners import assert_same, snapshot

pytestmark = pytest.mark.slow
SEED = 20261201


@pytest.fixture(scope="module")
def clips(tmp_path_factory, bad_files) -> list[Path]:
    d = tmp_path_factory.mktemp("resume-footage")
    files = [write_video(d / f"clip{i:02d}.mp4", moving_frames(60, 96, 64, seed=40 + i), fps=12)
             for i in range(8)]
    bad = d / "clip04b_notes.mp4"  # sorts among the clips: a failure in the middle of the run
    bad.write_bytes(bad_files["text"].read_bytes())
    return sorted([*files, bad])


def completed(db: Path) -> int:
    """Videos the catalog shows as completed, read as another process would."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM videos WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


def start(home: Path, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, VIDSONAR_HOME=str(home), VIDSONAR_CHECKPOINT_EVERY="2")
    return subprocess.Popen([str(VIDSONAR), "ingest", str(folder), "--json"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, db: Path, at_least: int | None, delay: float,
              timeout: float = 300) -> int:
    """SIGKILL ``proc`` ``delay`` s after the catalog shows ``at_least`` completed videos."""
    deadline = time.monotonic() + timeout
    while at_least is not None and completed(db) < at_least and proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the ingest made no progress")
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def lite_archive(home: Path, lite_space):
    from search.archive import Archive
    archive = Archive(home)
    archive.__dict__["space"] = lite_space  # the session's loaded model
    return archive


def test_killed_runs_resume_to_the_clean_archive(tmp_path, clips, lite_space):
    folder = clips[0].parent
    clean_home, home = tmp_path / "clean", tmp_path / "crashed"
    clean = lite_archive(clean_home, lite_space).ingestor().ingest([folder])
    assert clean.ingested == 8 and len(clean.failed) == 1

    rng = np.random.default_rng(SEED)
    db = home / "catalog.db"
    # kill moments follow the run's progress, not the clock (a quiet machine with a warm cache
    # ingests the 8 clips in a few seconds): a seeded count of completed videos, then a seeded
    # delay under the time one clip takes, so at least the first kill lands in flight
    first = int(rng.integers(1, 4))
    codes = [kill_when(start(home, folder), db, first, float(rng.uniform(0.0, 0.3)))]
    k = min(completed(db) + int(rng.integers(1, 3)), 7)
    codes.append(kill_when(start(home, folder), db, k, float(rng.uniform(0.0, 0.3))))
    assert -signal.SIGKILL in codes, f"no run was killed in flight: {codes}"
    proc = run_cli("ingest", str(folder), "--json", home=home, check=False)
    assert proc.returncode == 3, proc.stderr  # the bad file fails again
    final = json.loads(proc.stdout)
    assert final["ingested"] + final["skipped"] == 8 and len(final["failed"]) == 1

    catalog = Catalog(f"sqlite:///{db}")
    assert_same(snapshot(Catalog(f"sqlite:///{clean_home / 'catalog.db'}"), clean_home / "thumbs"),
                snapshot(catalog, home / "thumbs"), atol=2e-3)
    assert catalog.counts()["pending"] == 0
    assert ItemStore(catalog).counts()["pending"] == 0
    ok = {str(v.id) for v in catalog.videos(status="ok")}
    assert {p.name for p in (home / "thumbs").iterdir()} == ok  # no orphan thumbnail folders

    jobs = json.loads(run_cli("jobs", "--json", home=home).stdout)["jobs"]
    assert {j["kind"] for j in jobs} == {"cli"} and jobs[0]["status"] == "done"
    killed = [j for j in jobs[1:] if j["status"] != "done"]
    assert killed and all(j["status"] == "failed" and "interrupted" in j["error"] for j in killed)

    archive = lite_archive(home, lite_space)
    assert archive.store.index.count == catalog.embedding_count("lite") == clean.snippets
    again = archive.ingestor().ingest([folder])
    assert again.skipped == 8 and again.hashed == 1  # only the bad file is read again
