"""A file overwritten with other bytes: its old video is retired, so no hit points at footage
the file no longer holds (moved to a twin path that still has the bytes, else deleted)."""

from __future__ import annotations

import os
import shutil

import pytest

from indexer.pipeline import Ingestor
from samples.footage import write_video
from storage.catalog import Catalog
from storage.index_store import IndexStore
from tests.conftest import moving_frames
from tests.fakes import HashSpace, hash_config


class Archive:
    def __init__(self, root):
        self.root = root
        self.catalog = Catalog(f"sqlite:///{root}/catalog.db")
        self.space = HashSpace(hash_config())
        self.store = IndexStore(self.catalog, self.space.name, self.space.dim, root / "index")

    def ingest(self, *files):
        return Ingestor(self.catalog, self.space, self.store, self.root / "thumbs",
                        shots="none").ingest(list(files))

    def place(self, name: str, source):
        """A copy of ``source`` in the archive's media folder, as ``name``."""
        path = self.root / "media" / name
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, path)
        return path

    def videos(self) -> dict[str, int]:
        return {v.path: v.id for v in self.catalog.videos(status="ok")}


@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "src"
    return {"long": write_video(d / "long.mp4", moving_frames(120, 64, 48, seed=1), fps=12),  # 10 s
            "short": write_video(d / "short.mp4", moving_frames(48, 64, 48, seed=2), fps=12),  # 4 s
            "other": write_video(d / "other.mp4", moving_frames(48, 64, 48, seed=3), fps=12)}


def overwrite(path, source):
    shutil.copyfile(source, path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime, as a real rewrite has


def test_an_overwritten_file_replaces_its_video(tmp_path, clips):
    archive = Archive(tmp_path)
    path = archive.place("changing.mp4", clips["long"])
    archive.ingest(path)
    (old,) = archive.videos().values()
    assert (tmp_path / "thumbs" / str(old)).is_dir()

    overwrite(path, clips["short"])
    report = archive.ingest(path)
    assert (report.ingested, report.replaced) == (1, 1)
    ((where, new),) = archive.videos().items()
    assert new != old and where == str(path) and archive.catalog.video(old) is None
    assert archive.catalog.video(new).duration == pytest.approx(4.0, abs=0.1)
    assert archive.store.index.count == archive.catalog.counts()["snippets"] == 1  # only the 4 s video's
    assert not (tmp_path / "thumbs" / str(old)).exists()


def test_bytes_kept_at_a_twin_path_keep_their_video(tmp_path, clips):
    archive = Archive(tmp_path)
    first, twin = archive.place("a.mp4", clips["long"]), archive.place("b_copy.mp4", clips["long"])
    archive.ingest(first, twin)  # one video, recorded at the first path
    (old,) = archive.videos().values()

    overwrite(first, clips["short"])
    report = archive.ingest(first)
    assert report.replaced == 0
    videos = archive.videos()
    assert videos[str(twin.resolve())] == old and str(first) in videos  # moved, not deleted
    assert archive.store.index.count == archive.catalog.counts()["snippets"]


def test_overwritten_with_bytes_already_ingested_is_a_skip_that_still_retires(tmp_path, clips):
    archive = Archive(tmp_path)
    path, other = archive.place("x.mp4", clips["long"]), archive.place("other.mp4", clips["other"])
    archive.ingest(path, other)
    old = archive.videos()[str(path)]

    overwrite(path, clips["other"])
    report = archive.ingest(path)
    assert (report.skipped, report.replaced) == (1, 1)
    assert archive.catalog.video(old) is None and list(archive.videos()) == [str(other)]
    assert archive.store.index.count == archive.catalog.counts()["snippets"]
