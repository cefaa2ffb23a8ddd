"""An archive home that cannot be written (a replica, a DVD or NAS snapshot, another user's
home) is searched as it is: search, info, videos, thumbnails and streams work and write
nothing; every command that writes fails at once with an error naming the read-only home.

Tests run as root, who may write any folder whatever its mode, so most of them make the home
read-only the way the code detects it (``os.access(path, os.W_OK)`` false for paths in it) and
check that not a byte, name or folder of the home changed. One runs the real CLI on a real
read-only bind mount (``unshare -m``), where any write fails with EROFS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import main
from tests.conftest import REPO
from tests.fakes import HASH_SPACE
from tests.read_only import tree, unwritable
from tests.test_api import write_clip

SPACE = HASH_SPACE
pytestmark = pytest.mark.usefixtures("registered_hash_space")


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Path:
    """A home with two clips ingested, its catalog closed (no -wal or -shm left, as on a copy)."""
    from search.archive import Archive
    home = tmp_path_factory.mktemp("ro-built")
    media = tmp_path_factory.mktemp("ro-media")
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    archive = Archive(home, SPACE)
    report = archive.ingestor(window=1.0).ingest(clips)
    assert report.ingested == 2 and not report.failed
    archive.catalog.engine.dispose()
    assert not list(home.glob("catalog.db-*"))
    return home


@pytest.fixture
def home(built_home, tmp_path) -> Path:
    """A fresh copy of the built home for each test (a failing test cannot spoil the next)."""
    copy = tmp_path / "archive"
    shutil.copytree(built_home, copy)
    return copy


def cli(home: Path, *args: str, **env):
    return CliRunner().invoke(main, ["--home", str(home), "--space", SPACE, *args], env=env)


# --- reading ------------------------------------------------------------------------------
def test_search_info_and_jobs_work_on_a_read_only_home_and_write_nothing(home, monkeypatch):
    unwritable(monkeypatch, home)
    before = tree(home)
    found = cli(home, "search", "a red thing", "-k", "3", "--summaries", "--json")
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert hits and all(Path(h["thumbnail"]).is_file() for h in hits)
    assert hits[0]["summary"] is not None  # made, not cached: the catalog is not written
    shown = cli(home, "info", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["read_only"] and data["videos"] == 2 and data["index"]["count"] == data["snippets"] > 0
    assert cli(home, "jobs").exit_code == 0
    assert tree(home) == before


def test_a_read_only_home_without_its_saved_index_is_searched_from_the_catalog(home, monkeypatch):
    """No index on disk (or a damaged one): it is built in memory, and not saved."""
    shutil.rmtree(home / "index")
    unwritable(monkeypatch, home)
    before = tree(home)
    found = cli(home, "search", "a blue thing", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["hits"]
    assert tree(home) == before


def test_read_only_can_be_asked_for_on_a_writable_home(home):
    """Where the folder can be written, SQLite keeps its -wal and -shm beside the catalog, as
    for any reader of a WAL database (immutable would be wrong if a writer came): the catalog
    and every other file stay as they were, and the -wal stays empty."""
    before = tree(home)
    for args, env in ((["--read-only"], {}), ([], {"VIDSONAR_READ_ONLY": "1"})):
        result = CliRunner().invoke(main, [*args, "--home", str(home), "--space", SPACE,
                                           "search", "red", "--json"], env=env)
        assert result.exit_code == 0, result.output
        refused = CliRunner().invoke(main, [*args, "--home", str(home), "--space", SPACE,
                                            "ingest", str(home / "none.mp4")], env=env)
        assert refused.exit_code == 1 and "read-only" in refused.output, refused.output
    after = tree(home)
    assert after.pop("catalog.db-wal", (0,))[0] == 0
    after.pop("catalog.db-shm", None)
    assert after == before


def test_a_milvus_lite_index_of_a_read_only_home_is_refused_before_anything_is_written(
        tmp_path, monkeypatch):
    """Milvus Lite writes in its folder even to search (it takes a lock file, and builds and
    saves a segment's index the first time it loads the collection): the index is refused in
    one line naming it and what to do, and the home stays as it was (the server's start-up
    does the same, ``vidsonar serve``)."""
    pytest.importorskip("milvus_lite", reason="milvus-lite (vidsonar[milvus]) is not installed")
    from search.archive import Archive
    home = tmp_path / "lite-home"
    index = f"milvus:{home / 'milvus.db'}"
    archive = Archive(home, SPACE, index=index)
    assert archive.ingestor(window=1.0).ingest([write_clip(tmp_path / "red.mp4", (200, 30, 30))]).ingested
    archive.store.close()
    archive.catalog.engine.dispose()
    unwritable(monkeypatch, home)
    before = tree(home)
    for command in (["search", "red"], ["info"]):
        result = CliRunner().invoke(main, ["--home", str(home), "--space", SPACE, "--index", index,
                                           *command])
        assert result.exit_code == 1, result.output
        line = result.output.strip()
        assert line.startswith(f"error: cannot open the Milvus Lite index {home / 'milvus.db'} "
                               "of a read-only archive") and "milvus-lite server" in line, line
    assert tree(home) == before


# --- writing ------------------------------------------------------------------------------
@pytest.mark.parametrize("command, action", [
    (["ingest", "/no/such/clip.mp4"], "ingest"),  # refused before the path is even looked at
    (["delete", "1"], "delete"),
    (["tag", "1", "holiday"], "tag"),
    (["reindex"], "reindex"),
    (["thumbs", "--repair"], "repair thumbnails"),
])
def test_writes_on_a_read_only_home_fail_at_once_naming_it(home, monkeypatch, command, action):
    unwritable(monkeypatch, home)
    before = tree(home)
    result = cli(home, *command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith(f"error: cannot {action}") and "is read-only" in line, line
    assert str(home.resolve()) in line, line
    assert tree(home) == before


def test_listing_a_videos_tags_is_a_read(home, monkeypatch):
    unwritable(monkeypatch, home)
    result = cli(home, "tag", "1")
    assert result.exit_code == 0, result.output


def test_a_read_only_homes_cache_and_new_previews_are_kept_outside_it(home, monkeypatch, tmp_path):
    from vidsonar.home import Home
    monkeypatch.setenv("VIDSONAR_CACHE", str(tmp_path / "cache"))
    unwritable(monkeypatch, home)
    ro = Home.resolve(home)
    assert ro.read_only and "cannot write its folder" in ro.read_only_reason
    assert ro.cache == tmp_path / "cache"
    assert ro.preview(7, "d1g35t") == tmp_path / "cache" / "previews" / "d1g35t.mp4"
    monkeypatch.undo()
    (home / "previews").mkdir()
    (home / "previews" / "7.mp4").write_bytes(b"made while it was writable")
    unwritable(monkeypatch, home)
    assert Home.resolve(home).preview(7, "d1g35t") == home.resolve() / "previews" / "7.mp4"


def test_a_read_only_home_that_does_not_exist_is_not_made(tmp_path):
    from vidsonar.errors import NotFoundError
    from vidsonar.home import Home
    with pytest.raises(NotFoundError, match="no archive"):
        Home.resolve(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()


# --- the server -----------------------------------------------------------------------------
def test_the_server_serves_a_read_only_home_and_refuses_writes(home, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api.server import ServerSettings, create_app
    unwritable(monkeypatch, home)
    before = tree(home)
    settings = ServerSettings(home=home, space=SPACE, api_keys=["k"], warm_up=True)
    with TestClient(create_app(settings)) as client:
        health = client.get("/api/health")
        assert health.status_code == 200 and health.json()["read_only"], health.text
        hits = client.get("/api/search", params={"q": "a red thing", "k": 2}).json()["hits"]
        assert hits
        assert client.get(hits[0]["thumbnail_url"]).status_code == 200
        videos = client.get("/api/videos").json()
        assert len(videos) == 2
        assert client.get(f"/api/videos/{videos[0]['id']}/stream").status_code == 200
        assert client.get(f"/api/snippets/{hits[0]['snippet_id']}/summary").status_code == 200
        assert client.get("/api/info").json()["read_only"]
        key = {"X-API-Key": "k"}
        for resp in (client.put("/api/uploads/new.mp4", content=b"x" * 10, headers=key),
                     client.post("/api/jobs", json={"paths": [str(tmp_path)]}, headers=key),
                     client.delete(f"/api/videos/{videos[0]['id']}", headers=key)):
            assert resp.status_code == 409, resp.text
            assert "is read-only" in resp.json()["detail"] and str(home.resolve()) in resp.json()["detail"]
    assert tree(home) == before


def test_a_missing_thumbnail_of_a_read_only_home_is_made_in_the_cache(home, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api.server import ServerSettings, create_app
    first = sorted((home / "thumbs").rglob("*.jpg"))[0]
    original = first.read_bytes()
    first.unlink()
    monkeypatch.setenv("VIDSONAR_CACHE", str(tmp_path / "cache"))
    unwritable(monkeypatch, home)
    before = tree(home)
    from storage.ids import pack_snippet_id
    sid = pack_snippet_id(int(first.parent.name), int(first.stem))
    with TestClient(create_app(ServerSettings(home=home, space=SPACE))) as client:
        for _ in range(2):  # made once, then served from the cache
            resp = client.get(f"/api/snippets/{sid}/thumbnail")
            assert resp.status_code == 200 and resp.content == original, resp.text[:200]
    assert tree(home) == before
    assert len(list((tmp_path / "cache" / "thumbs").rglob("*.jpg"))) == 1


# --- a real read-only mount -----------------------------------------------------------------
MOUNTED = r"""
import json, subprocess, sys
src, mnt = sys.argv[1], sys.argv[2]
try:
    subprocess.run(["mount", "--bind", src, mnt], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", mnt], check=True, capture_output=True)
except (OSError, subprocess.CalledProcessError) as exc:
    print(json.dumps({"unmounted": str(getattr(exc, "stderr", b"") or exc)}))
    sys.exit(0)
from click.testing import CliRunner
from tests.fakes import hash_space
with hash_space():
    from api.cli import main
    out = {}
    for name, args in [("search", ["search", "a red thing", "--json"]), ("info", ["info", "--json"]),
                       ("ingest", ["ingest", src])]:
        r = CliRunner().invoke(main, ["--home", mnt, "--space", "hash-test", *args])
        out[name] = [r.exit_code, r.output]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_search_and_info_on_a_real_read_only_mount(home, tmp_path):
    """The whole CLI where the kernel refuses every write (EROFS), not only where the code
    believes it cannot write."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount (util-linux) to make a read-only bind mount")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    before = tree(home)
    proc = subprocess.run(["unshare", "-m", sys.executable, "-c", MOUNTED, str(home), str(mnt)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"no mount namespace here (unshare -m needs CAP_SYS_ADMIN): {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unmounted" in out:
        pytest.skip(f"cannot make a read-only bind mount here (needs CAP_SYS_ADMIN): {out['unmounted']}")
    code, text = out["search"]
    assert code == 0, text
    assert json.loads(text)["hits"]
    code, text = out["info"]
    assert code == 0 and json.loads(text)["read_only"], text
    code, text = out["ingest"]
    assert code == 1 and text.startswith("error: cannot ingest") and str(mnt) in text, text
    assert tree(home) == before
