"""One archive, many processes: a real `vidsonar serve` follows what CLI processes commit.

The server runs as a subprocess on a loopback port; CLI ingests and deletes run as other
processes on the same home. The server must show each change without a restart (it follows
the catalog's change log), and a server upload racing a CLI ingest must leave its index
holding exactly the catalog's vectors.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, VIDSONAR, vidsonar_server, wait_healthy

pytestmark = pytest.mark.slow

KEY = "shared-archive-test-key"
#: how long a change may take to reach the server; it polls the log every second
FOLLOW_WAIT = 30.0


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def hit_videos(url: str) -> set[int]:
    """Videos among the hits of a search wide enough to reach every snippet of a tiny archive."""
    q = urllib.parse.urlencode({"q": "a photo", "k": 200, "lang": "eng_Latn"})
    return {h["video_id"] for h in get(f"{url}/api/search?{q}")["hits"]}


def video_id(url: str, name: str) -> int:
    videos = get(f"{url}/api/videos")
    rows = videos if isinstance(videos, list) else videos.get("videos", [])
    return next(v["id"] for v in rows if Path(v["path"]).name == name)


def wait_for(check, what: str):
    deadline = time.monotonic() + FOLLOW_WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"the server did not see {what} within {FOLLOW_WAIT:.0f} s")


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_cache):
    from samples.footage import make_clip
    home = tmp_path_factory.mktemp("shared-home")
    media = tmp_path_factory.mktemp("shared-media")
    for name in ("coffee", "chelsea", "rocket", "clock", "camera"):
        make_clip(media / name / f"{name}.mp4", [name], seconds=4.0)
    env = {**os.environ, "VIDSONAR_HOME": str(home), "VIDSONAR_API_KEYS": KEY,
           "VIDSONAR_CACHE": str(shared_cache)}
    env.pop("VIDSONAR_SPACE", None)
    cli(env, "ingest", str(media / "coffee"), "--json")
    with vidsonar_server(env) as (url, proc):
        assert wait_healthy(url, proc)["videos"] == 1
        yield url, env, media


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(VIDSONAR), *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"vidsonar {' '.join(args)}: {proc.stderr}"
    return proc


def test_the_server_follows_a_cli_ingest_and_a_cli_delete(archive):
    url, env, media = archive
    before = hit_videos(url)
    cli(env, "ingest", str(media / "chelsea"), "--json")
    chelsea = video_id(url, "chelsea.mp4")  # the catalog is shared at once
    assert chelsea not in before
    wait_for(lambda: chelsea in hit_videos(url), "a CLI ingest")
    cli(env, "delete", str(chelsea))
    # hits of rows the catalog no longer has are never shown; the index itself drops the
    # vectors when the server applies the delete entry of the log
    wait_for(lambda: chelsea not in hit_videos(url), "a CLI delete (hits)")

    def index_matches_catalog():
        health = get(f"{url}/api/health")
        return health["index_vectors"] == health["snippets"] == 1  # coffee's one snippet
    wait_for(index_matches_catalog, "a CLI delete (the index)")


def test_a_server_upload_and_a_cli_ingest_at_once_leave_the_index_equal_to_the_catalog(archive):
    url, env, media = archive
    ingest = subprocess.Popen([str(VIDSONAR), "ingest", str(media / "clock"), str(media / "camera"),
                               "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    body = (media / "rocket" / "rocket.mp4").read_bytes()
    request = urllib.request.Request(f"{url}/api/uploads/rocket.mp4", data=body, method="PUT",
                                     headers={"X-API-Key": KEY, "Content-Type": "video/mp4"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        job = json.load(resp)
    out, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert json.loads(out)["ingested"] == 2
    wait_for(lambda: get(f"{url}/api/jobs/{job['id']}")["status"] in ("done", "failed"), "the upload job end")
    assert get(f"{url}/api/jobs/{job['id']}")["status"] == "done"
    ok = {video_id(url, n) for n in ("coffee.mp4", "clock.mp4", "camera.mp4", "rocket.mp4")}

    def settled():
        health = get(f"{url}/api/health")
        return health["index_vectors"] == health["snippets"] and hit_videos(url) == ok
    wait_for(settled, "both writers' videos")
    # and the index on disk, as a new process opens it, holds exactly the catalog's vectors
    info = json.loads(cli(env, "info", "--json").stdout)
    assert info["index"]["count"] == info["snippets"] > 0
