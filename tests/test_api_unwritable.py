"""A folder the server cannot write is a 503 that names it and says what to do, not a 500; a
full one is a 507 naming it (a real full disk: ``tests.full_disk``), and the OpenAPI document
lists both answers on every route that writes.

Tests run as root, whom a folder's mode does not stop, so the kernel's refusal is played by
``refuse_writes_in``: every entry made or changed in the folder fails with EACCES (its
permissions) or EROFS (a read-only file system), as the system calls would.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from tests.full_disk import full_tmpfs
from tests.test_api import SPACE, settings_for
from tests.read_only import unwritable

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")


def refuse_writes_in(monkeypatch, folder: Path, code: int) -> None:
    """Make creating, opening for writing or renaming anything in ``folder`` fail with ``code``."""
    folder = folder.resolve()

    def within(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(path).resolve().parent.is_relative_to(folder)

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fspath(path))
    real_mkdir, real_os_open, real_replace, real_rename, real_open = (
        os.mkdir, os.open, os.replace, os.rename, builtins.open)

    def mkdir(path, *args, **kwargs):
        if within(path) and not os.path.exists(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if within(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def moved(real):
        def move(src, dst, *args, **kwargs):
            for path in (src, dst):
                if within(path):
                    refuse(path)
            return real(src, dst, *args, **kwargs)
        return move

    def open_(file, mode="r", *args, **kwargs):
        if within(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "replace", moved(real_replace))
    monkeypatch.setattr(os, "rename", moved(real_rename))
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Path:
    """A home holding one AVI, which browsers cannot play: its stream is a preview made on demand."""
    from samples.footage import write_video
    from search.archive import Archive
    home, media = tmp_path_factory.mktemp("unwritable-home"), tmp_path_factory.mktemp("unwritable-media")
    frames = [np.full((64, 96, 3), (40 * i) % 255, np.uint8) for i in range(16)]
    avi = write_video(media / "old.avi", frames, fps=8, codec="mpeg4")
    archive = Archive(home, SPACE)
    assert archive.ingestor(window=1.0).ingest([avi]).ingested == 1
    archive.catalog.engine.dispose()
    return home


@pytest.fixture
def home(built_home, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(built_home, copy)
    return copy


def check_refused(client: TestClient, folder: Path, *advice: str) -> None:
    video = client.get("/api/videos").json()[0]
    for method in ("GET", "HEAD"):
        resp = client.request(method, video["video_url"])
        assert resp.status_code == 503, (method, resp.status_code, resp.text[:300])
    body = client.get(video["video_url"]).json()
    assert body["error"] == "unwritable_folder" and str(folder) in body["detail"], body
    assert all(words in body["detail"] for words in advice), body
    original = client.get(video["video_url"], params={"original": True})  # writes nothing
    assert original.status_code == 200 and original.content == Path(video["path"]).read_bytes()


def test_a_previews_folder_the_server_may_not_write_is_a_503_naming_it(home, monkeypatch):
    previews = home / "previews"
    previews.mkdir()
    with TestClient(create_app(settings_for(home)), raise_server_exceptions=False) as client:
        refuse_writes_in(monkeypatch, previews, errno.EACCES)
        check_refused(client, previews.resolve(), "permission")
    monkeypatch.undo()
    assert list(previews.iterdir()) == []  # no preview, no temporary file left


def test_a_read_only_homes_cache_on_a_read_only_file_system_is_a_503_naming_it(home, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("VIDSONAR_CACHE", str(cache))
    unwritable(monkeypatch, home)
    with TestClient(create_app(settings_for(home)), raise_server_exceptions=False) as client:
        assert client.get("/api/health").json()["read_only"]
        refuse_writes_in(monkeypatch, cache, errno.EROFS)
        check_refused(client, cache.resolve(), "Read-only file system", "VIDSONAR_CACHE")


def test_a_full_disk_under_the_previews_is_a_507_naming_the_folder(home):
    """ffmpeg's "No space left on device" while it writes a preview is the disk's failure, told
    as every full disk is (507, the folder named), not a 422 blaming the video."""
    previews = home / "previews"
    with full_tmpfs(previews):
        with TestClient(create_app(settings_for(home)), raise_server_exceptions=False) as client:
            video = client.get("/api/videos").json()[0]
            for method in ("GET", "HEAD"):
                resp = client.request(method, video["video_url"])
                assert resp.status_code == 507, (method, resp.status_code, resp.text[:300])
            body = client.get(video["video_url"]).json()
            assert body["error"] == "disk_full" and "no space left" in body["detail"], body
            assert str(previews) in body["detail"] or str(previews.resolve()) in body["detail"], body
            original = client.get(video["video_url"], params={"original": True})  # writes nothing
            assert original.status_code == 200 and original.content == Path(video["path"]).read_bytes()
        assert [p.name for p in previews.iterdir()] == ["filler"]  # no preview, no temporary file


#: (method, route) of every operation that writes a file or the catalog
WRITING = [("get", "/api/search"), ("post", "/api/search"), ("post", "/api/search/example"),
           ("get", "/api/snippets/{snippet_id}/thumbnail"), ("head", "/api/snippets/{snippet_id}/thumbnail"),
           ("get", "/api/snippets/{snippet_id}/summary"), ("get", "/api/videos/{video_id}/stream"),
           ("head", "/api/videos/{video_id}/stream"), ("delete", "/api/videos/{video_id}"),
           ("put", "/api/uploads/{filename}"), ("post", "/api/jobs")]


def test_every_route_that_writes_documents_the_full_disk_and_unwritable_folder_answers(home):
    paths = create_app(settings_for(home)).openapi()["paths"]
    for method, route in WRITING:
        answers = paths[route][method]["responses"]
        assert {"503", "507"} <= set(answers), (method, route, sorted(answers))
        assert answers["507"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    for route in ("/api/videos", "/api/videos/{video_id}", "/api/jobs", "/api/info"):
        assert "503" in paths[route]["get"]["responses"], route  # a damaged catalog
