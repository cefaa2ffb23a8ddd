"""Video ids are never given twice: a snippet id saved or shared (a link, a bookmark, an export)
packs its video's id, so after a delete it must name nothing, never the next video ingested.
On SQLite and a real PostgreSQL server (``tests/pg.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from storage import schema
from storage.catalog import Catalog, Video
from storage.ids import MAX_SNIPPETS_PER_VIDEO, MAX_VIDEO_ID, pack_snippet_id
from tests.fakes import HashSpace, add_video, hash_config
from vidsonar.errors import CatalogError

REPO = Path(__file__).resolve().parents[1]


def _vectors(n: int = 2) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)


def test_a_deleted_videos_id_is_not_given_to_the_next_video(catalog_url, tmp_path):
    """Through the delete that `vidsonar delete` and DELETE /api/videos/{id} run."""
    from search.archive import Archive
    space = HashSpace(hash_config())
    archive = Archive(tmp_path / "home", space, catalog=Catalog(catalog_url))
    catalog = archive.catalog
    ids = [add_video(catalog, _vectors(), space.name, digest=d)[0] for d in ("a", "b", "c")]
    newest = max(ids)
    saved = pack_snippet_id(newest, 1)  # a hit someone bookmarked
    assert archive.delete_video(newest)[1]
    again = add_video(catalog, _vectors(), space.name, digest="d")[0]
    assert again > newest
    assert catalog.snippets([saved]) == {}  # the saved id names nothing, not video "d"
    # the newest again, then a failure recorded: still never an id given before
    assert archive.delete_video(again)[1]
    failed = catalog.record_failure("/v/e.mp4", "e", 1, "not a video", None)
    assert failed > again
    assert catalog.reserve_video("/v/f.mp4", "f", 1, None) > failed
    catalog.engine.dispose()


def _catalog_at_0009(url: str) -> None:
    """A catalog as the code before revision 0010 left it: videos 1 and 2, and videos 4 and 5
    ingested and deleted, which only the change log still remembers."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        from alembic import command
        command.upgrade(schema._config(conn), "0009")
    with engine.begin() as conn:
        now = "2026-01-02 03:04:05"
        for vid in (1, 2):
            conn.execute(sa.text("INSERT INTO videos (id, path, content_hash, size_bytes, status, "
                                 "ingested_at) VALUES (:id, :p, :h, 1, 'ok', :t)"),
                         {"id": vid, "p": f"/v/{vid}.mp4", "h": f"h{vid}", "t": now})
        for vid in (5, 4):
            for op in ("add", "delete"):
                conn.execute(sa.text("INSERT INTO vector_changes (space, video_id, op, count, "
                                     "created_at) VALUES ('s', :v, :op, 1, :t)"),
                             {"v": vid, "op": op, "t": now})
        if engine.dialect.name == "postgresql":  # the old code let the sequence count
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('videos', 'id'), 5)"))
    engine.dispose()


def test_ids_freed_before_the_upgrade_are_not_given_again(catalog_url):
    _catalog_at_0009(catalog_url)
    catalog = Catalog(catalog_url)  # migrates
    assert catalog.reserve_video("/v/new.mp4", "new", 1, None) == 6
    assert [v.id for v in catalog.videos()] == [1, 2, 6]
    catalog.engine.dispose()


_RESERVER = """
import sys, time
from pathlib import Path
from storage.catalog import Catalog
url, tag, ready, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
catalog = Catalog(url)
ready.touch()
while not go.exists():
    time.sleep(0.002)
for i in range(25):  # each reservation is the newest video, deleted at once: its id is freed
    vid = catalog.reserve_video(f"/v/{tag}{i}.mp4", f"{tag}{i}", 1, None)
    print(vid, flush=True)
    assert catalog.delete_video(vid)
catalog.engine.dispose()
"""


def test_processes_reserving_and_deleting_at_once_never_share_an_id(catalog_url, tmp_path):
    """Two processes, each its own engine on one catalog, reserve and delete at the same time."""
    Catalog(catalog_url).engine.dispose()  # migrated once, before the race
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _RESERVER, catalog_url, tag, str(r), str(go)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag, r in zip("ab", readies)]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [rc for _, rc in results] == [0, 0], "\n".join(err for (_, err), _ in results)
    ids = [int(line) for (out, _), _ in results for line in out.split()]
    assert len(ids) == 50 and len(set(ids)) == 50, sorted(ids)


def test_a_video_written_with_its_own_id_keeps_it_after_a_delete(tmp_path):
    """A row not reserved through the catalog (an import, a test) raises SQLite's mark when it
    is deleted, so its id is not given again either."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with catalog.session() as s:
        s.add(Video(id=3_000_000, path="/v/big.mp4", content_hash="big", size_bytes=1, status="ok"))
    assert catalog.delete_video(3_000_000)
    assert catalog.reserve_video("/v/next.mp4", "next", 1, None) == 3_000_001
    catalog.engine.dispose()


def test_the_last_video_id_a_snippet_id_holds_is_given_then_refused(tmp_path):
    """SQLite's ids go to 2**63 - 1, snippet ids hold 43 bits of video id: past the last one,
    a reservation is an error naming the problem, not an id that wraps into another video's."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with catalog.session() as s:
        s.add(Video(id=MAX_VIDEO_ID - 1, path="/v/old.mp4", content_hash="old", size_bytes=1,
                    status="ok"))
    last = catalog.reserve_video("/v/last.mp4", "last", 1, None)
    assert last == MAX_VIDEO_ID
    assert pack_snippet_id(last, MAX_SNIPPETS_PER_VIDEO - 1) == 2**63 - 1
    with pytest.raises(CatalogError, match=r"every video id a snippet id can hold.*/v/over\.mp4"):
        catalog.reserve_video("/v/over.mp4", "over", 1, None)
    assert catalog.video_by_hash("over") is None  # nothing written
    catalog.engine.dispose()


def test_a_lost_mark_is_an_error_naming_it_not_a_reused_id(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with catalog.session() as s:
        s.execute(sa.text("DELETE FROM id_marks"))
    with pytest.raises(CatalogError, match="id_marks table has lost its 'videos' row"):
        catalog.reserve_video("/v/a.mp4", "a", 1, None)
    catalog.engine.dispose()


def test_a_run_out_of_video_ids_stops_in_one_line_not_a_failure_a_file(tmp_path, registered_hash_space):
    """The catalog's error, not the files': the run stops, saying it once, and records no file
    as failed (each would fail with it, and be skipped as failed by the next run)."""
    from click.testing import CliRunner

    from api.cli import main
    from tests.fakes import HASH_SPACE
    from tests.test_api import write_clip
    home = tmp_path / "home"
    clips = [write_clip(tmp_path / f"{name}.mp4", colour)
             for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200)), ("green", (30, 200, 30)))]

    def ingest(*paths: Path):
        return CliRunner().invoke(main, ["--home", str(home), "--space", HASH_SPACE, "ingest",
                                         *map(str, paths)])
    assert ingest(clips[0]).exit_code == 0
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    with catalog.session() as s:
        s.execute(sa.text("UPDATE id_marks SET value = :v WHERE name = 'videos'"), {"v": MAX_VIDEO_ID})
    out = ingest(*clips[1:])
    assert out.exit_code == 1, out.output
    said = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "every video id a snippet id can hold" in said[0], out.stderr
    assert "Traceback" not in out.output
    with catalog.session() as s:
        assert s.scalar(sa.text("SELECT count(*) FROM videos WHERE status = 'failed'")) == 0
        assert s.scalar(sa.text("SELECT count(*) FROM ingest_items WHERE status = 'failed'")) == 0
    catalog.engine.dispose()
