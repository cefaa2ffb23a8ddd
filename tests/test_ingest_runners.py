"""Ingestion runners agree: overlapped local == sequential exactly, Ray == local; resumable items.

Plumbing runs on the deterministic fake space (``tests.fakes.HashSpace``): a snippet's vector
depends on its own frames only, so runners that batch differently must give the same bytes.
Ray runs for real on a session-scoped local cluster (2 CPUs, no GPU, dashboard off, a small
object store).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from encoders.device import one_blas_thread
from indexer.decode import iter_snippets
from indexer.pipeline import Ingestor
from samples.footage import write_video
from storage.catalog import Catalog, Embedding, Snippet, Video
from storage.index_store import IndexStore
from storage.items import ItemStore
from storage.jobs import JobStore
from tests.conftest import REPO, moving_frames
from tests.fakes import HASH_SPACE, HashSpace, hash_config
from vidsonar.errors import InputError


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'vidsonar[ray]')")
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    # address "local": a cluster of its own, even where the last `ray start` on this machine
    # (another test file's cluster, one left behind) is recorded in /tmp/ray
    options = dict(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
                   object_store_memory=256 * 1024 * 1024, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        ray.init(**options)
    except Exception as exc:  # noqa: BLE001
        # Ray gives its raylet a fixed 30 s to register; once in a CI run from a fresh clone on
        # 2 busy cores it never did (no raylet log at all). One more start, then fail as it does.
        if "timed out during startup" not in str(exc):
            raise
        ray.shutdown()
        ray.init(**options)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def footage(tmp_path_factory, bad_files) -> list[Path]:
    """Clips of three shapes (so batches mix frame sizes), a duplicate, and every bad file."""
    d = tmp_path_factory.mktemp("footage")
    clips = [write_video(d / "a_wide.mp4", moving_frames(60, 96, 64, seed=1), fps=12),
             write_video(d / "b_tall.mp4", moving_frames(75, 64, 96, seed=2), fps=15),
             write_video(d / "c_square.mp4", moving_frames(40, 80, 80, seed=3), fps=10),
             write_video(d / "d_long.mp4", moving_frames(150, 96, 64, seed=4), fps=12)]
    twin = d / "e_twin_of_a.mp4"
    shutil.copyfile(clips[0], twin)
    return [clips[0], bad_files["text"], clips[1], bad_files["empty"], clips[2], twin,
            bad_files["truncated"], clips[3], bad_files["audio_only"], d / "missing.mp4"]


def ingest(root: Path, files, runner: str, **kwargs):
    root.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(f"sqlite:///{root}/catalog.db")
    space = kwargs.pop("space", None) or HashSpace(hash_config())
    store = IndexStore(catalog, space.name, space.dim, root / "index")
    kwargs.setdefault("shots", "none")  # the fixed grid: expected windows come from snippet_windows
    report = Ingestor(catalog, space, store, root / "thumbs", runner=runner, **kwargs).ingest(files)
    return report, catalog, store, space


def expected_snippets(files, size: int) -> int:
    """Snippets the decoder cuts from the good files (each distinct content once)."""
    good = {p.read_bytes(): p for p in files if p.suffix == ".mp4" and p.parent.name.startswith("footage")
            and p.exists()}
    return sum(len(list(iter_snippets(p, 4, 8, size))) for p in good.values())


def snapshot(catalog: Catalog, thumbs: Path) -> dict:
    """Everything an archive holds, comparable across runs."""
    with catalog.session() as s:
        videos = [(v.id, v.path, v.content_hash, v.status, v.error, v.duration, v.fps, v.width,
                   v.height, v.rotation) for v in s.scalars(sa.select(Video).order_by(Video.id))]
        snippets = [(r.id, r.video_id, r.idx, r.start, r.end, tuple(r.frame_times))
                    for r in s.scalars(sa.select(Snippet).order_by(Snippet.id))]
        vectors = {e.snippet_id: np.frombuffer(e.vector, np.float16)
                   for e in s.scalars(sa.select(Embedding))}
    files = {str(p.relative_to(thumbs)): p.read_bytes() for p in sorted(Path(thumbs).rglob("*.jpg"))}
    return {"videos": videos, "snippets": snippets, "vectors": vectors, "thumbs": files}


def assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a["videos"] == b["videos"]
    assert a["snippets"] == b["snippets"]
    assert a["vectors"].keys() == b["vectors"].keys()
    for k, v in a["vectors"].items():
        np.testing.assert_allclose(v.astype(np.float32), b["vectors"][k].astype(np.float32), atol=atol)
    assert a["thumbs"] == b["thumbs"]


def test_the_fake_spaces_vectors_depend_on_each_snippet_alone():
    """What the exact comparisons below rely on: batching changes no bit of any vector."""
    frames = np.random.default_rng(3).integers(0, 256, (5, 8, 48, 64, 3), np.uint8)
    space, other = HashSpace(hash_config()), HashSpace(hash_config())
    whole = space.encode_snippets(frames)
    np.testing.assert_array_equal(whole, np.concatenate([other.encode_snippets(frames[i:i + 1])
                                                         for i in range(5)]))
    np.testing.assert_array_equal(whole[1:4], space.encode_snippets(frames[1:4]))
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-6)
    assert (whole @ whole.T - np.eye(5)).max() < 0.99  # distinct snippets, distinct vectors
    assert space.calls == 2 and other.calls == 5


def test_overlapped_runner_equals_the_sequential_one_exactly(tmp_path, footage):
    seq, seq_cat, seq_store, seq_space = ingest(tmp_path / "seq", footage, "sequential")
    loc, loc_cat, loc_store, loc_space = ingest(tmp_path / "loc", footage, "local", batch_snippets=8)
    assert_same(snapshot(seq_cat, tmp_path / "seq" / "thumbs"), snapshot(loc_cat, tmp_path / "loc" / "thumbs"))
    assert loc.failed == seq.failed and len(loc.failed) == 5  # 4 bad files and the missing one
    snippets = expected_snippets(footage, loc_space.frame_size)
    assert (loc.ingested, loc.skipped, loc.snippets) == (seq.ingested, seq.skipped, seq.snippets) == (4, 1, snippets)
    # batches spanned videos (one batch of 8 across 3 frame shapes vs one batch per video)
    assert seq_space.calls == 4 and loc_space.calls == 3
    assert seq_space.shares == [0] and seq_space.prepared == 0  # sequential: every core, loaded on use
    # overlapped: a core left to the decoder from the start, every core given back at the end,
    # and the models loaded by the encoder thread before its first batch
    assert loc_space.shares[0] == 1 and loc_space.shares[-1] == 0 and loc_space.prepared == 1
    assert set(loc_space.shares) <= {0, 1}  # a core per decoder at work, never more
    assert loc_store.index.count == seq_store.index.count == snippets
    # numpy's BLAS on one thread during every batch of both runs, and released after them
    assert seq_space.blas_held == [True] * 4 and loc_space.blas_held == [True] * 3
    assert not one_blas_thread().held


def test_several_decoder_threads_give_what_one_gives(tmp_path, footage):
    seq, seq_cat, _, _ = ingest(tmp_path / "seq", footage, "sequential")
    many, many_cat, many_store, many_space = ingest(tmp_path / "many", footage, "local", decoders=3)
    # ids come from the plan, which the decoders share in file order: the same as one thread's
    assert_same(snapshot(seq_cat, tmp_path / "seq" / "thumbs"), snapshot(many_cat, tmp_path / "many" / "thumbs"))
    assert many.failed == seq.failed and (many.ingested, many.snippets) == (seq.ingested, seq.snippets)
    assert many_space.shares[0] == 3 and set(many_space.shares) <= {0, 1, 2, 3}
    assert many_store.index.count == seq.snippets
    with pytest.raises(InputError, match="at least 1"):
        ingest(tmp_path / "none", footage, "local", decoders=0)


def test_time_codes_are_the_decoders(tmp_path, footage):
    report, catalog, _, space = ingest(tmp_path, footage[:1], "local")
    want = [(float(s.window.start), float(s.window.end), tuple(float(t) for t in s.window.frame_times))
            for s in iter_snippets(footage[0], 4, 8, space.frame_size)]
    with catalog.session() as s:
        got = [(r.start, r.end, tuple(r.frame_times)) for r in s.scalars(sa.select(Snippet).order_by(Snippet.id))]
    assert got == want and report.media_seconds == pytest.approx(5.0)


def test_ray_runner_equals_the_local_one(tmp_path, footage, ray_cluster):
    from indexer.runners.ray import RayOptions
    loc, loc_cat, _, _ = ingest(tmp_path / "loc", footage, "local")
    ray_report, ray_cat, ray_store, _ = ingest(tmp_path / "ray", footage, "ray",
                                               ray_options=RayOptions(encoders=1), batch_snippets=4)
    assert_same(snapshot(loc_cat, tmp_path / "loc" / "thumbs"),
                snapshot(ray_cat, tmp_path / "ray" / "thumbs"), atol=1e-3)
    assert ray_report.failed == loc.failed
    snippets = expected_snippets(footage, HashSpace.frame_size)
    assert (ray_report.ingested, ray_report.skipped, ray_report.snippets) == (4, 1, snippets)
    assert ray_store.index.count == snippets and ray_report.runner == "ray"


def test_gpus_are_asked_only_of_a_cluster_that_has_them(ray_cluster):
    from indexer.runners.ray import gpus_to_request
    assert gpus_to_request(ray_cluster, 1.0) == 0.0  # the session cluster has num_gpus=0
    assert gpus_to_request(ray_cluster, 0.0) == 0.0


def test_a_rerun_skips_unchanged_finished_files_without_hashing(tmp_path, footage):
    first, catalog, _, _ = ingest(tmp_path, footage, "local")
    assert first.hashed == 9  # every file that exists
    again, _, _, _ = ingest(tmp_path, footage, "local")
    # the five good files are trusted by path, size and mtime; the bad ones are tried again
    assert again.hashed == 4 and again.skipped == 5 and again.ingested == 0
    items = {Path(i.path).name: i for i in ItemStore(catalog).all()}
    assert items["a_wide.mp4"].hashes == 1 and items["a_wide.mp4"].status == "done"
    assert items["notes.mp4"].status == "failed" and items["notes.mp4"].attempts == 2
    os.utime(footage[0], ns=(1, 1))  # touched: hashed again, found to be the same bytes
    touched, _, _, _ = ingest(tmp_path, footage[:1], "local")
    assert touched.hashed == 1 and touched.skipped == 1
    kinds = {j.kind for j in JobStore(catalog).list()}
    assert kinds == {"cli"} and all(j.status == "done" for j in JobStore(catalog).list())


def test_a_deleted_video_is_ingested_again(tmp_path, footage):
    _, catalog, store, _ = ingest(tmp_path, footage[:1], "local")
    store.delete_video(1, tmp_path / "thumbs")
    report, _, _, _ = ingest(tmp_path, footage[:1], "local")
    assert report.ingested == 1 and report.hashed == 1


def test_a_pending_video_left_by_a_dead_run_is_swept(tmp_path, footage):
    _, catalog, _, _ = ingest(tmp_path, footage[:1], "local")
    # what a kill leaves: a reserved (pending) video with thumbnails, its item pending,
    # its job running under a process that is gone
    jobs, items = JobStore(catalog), ItemStore(catalog)
    job = jobs.create("cli", [str(footage[2])], HASH_SPACE)
    jobs.start(job.id, total=1)
    with catalog.session() as s:
        s.execute(sa.update(sa.table("ingest_jobs", sa.column("id"), sa.column("owner")))
                  .where(sa.column("id") == job.id).values(owner="nohost-is-this:0"))
    video_id = catalog.reserve_video(str(footage[2]), "f" * 64, 1, None)
    items.put(str(footage[2].resolve()), size=1, mtime_ns=1, status="pending", job_id=job.id,
              video_id=video_id)
    (tmp_path / "thumbs" / str(video_id)).mkdir(parents=True)
    (tmp_path / "thumbs" / str(video_id) / "0.jpg").write_bytes(b"x")
    (tmp_path / "thumbs" / "999").mkdir()  # an orphan folder
    report, _, _, _ = ingest(tmp_path, footage[:1], "local")
    # another host's job counts as alive: its pending video is left alone
    assert catalog.counts()["pending"] == 1 and (tmp_path / "thumbs" / str(video_id)).exists()
    assert not (tmp_path / "thumbs" / "999").exists() and report.skipped == 1
    with catalog.session() as s:
        s.execute(sa.update(sa.table("ingest_jobs", sa.column("id"), sa.column("owner")))
                  .where(sa.column("id") == job.id).values(owner=f"{socket.gethostname()}:999999999"))
    gone = catalog.reserve_video(str(tmp_path / "gone.mp4"), "e" * 64, 1, None)  # file deleted since
    ingest(tmp_path, footage[:1], "local")
    # the dead run's thumbnails go; its reservation stays while the file is there (redoing the
    # file reuses the id), and goes with the file
    assert not (tmp_path / "thumbs" / str(video_id)).exists()
    assert catalog.video(video_id).status == "pending" and catalog.video(gone) is None
    assert jobs.get(job.id).status == "failed" and "interrupted" in jobs.get(job.id).error
    assert items.get(str(footage[2].resolve())).status == "failed"


def test_ray_runner_takes_long_plans_in_blocks_of_many_files(tmp_path, footage, ray_cluster):
    from indexer.runners.ray import RayOptions
    files = footage[:3]  # a clip, a bad file, another clip of another shape
    loc, loc_cat, _, _ = ingest(tmp_path / "loc", files, "local")
    ray_report, ray_cat, _, _ = ingest(tmp_path / "ray", files, "ray",
                                       ray_options=RayOptions(manifest_rows=0))
    assert_same(snapshot(loc_cat, tmp_path / "loc" / "thumbs"),
                snapshot(ray_cat, tmp_path / "ray" / "thumbs"), atol=1e-3)
    assert ray_report.failed == loc.failed and ray_report.ingested == 2


def test_a_ray_run_leaves_other_handlers_of_ray_datas_logger_as_they_were(tmp_path, footage, ray_cluster):
    """The Ray runner quiets Ray Data's terminal handler. It set CRITICAL on every handler of
    Ray Data's logger but its log file's, so an application's handler there (or pytest's log
    capture, which pytest adds to each logger that does not propagate) heard nothing after:
    the tests after a Ray run in the same process lost every warning, of every logger."""
    import logging
    assert ingest(tmp_path / "first", footage[:1], "ray")[0].ingested == 1  # Ray Data set up its logger
    mine = logging.StreamHandler()  # the application's: Ray Data's logs in its own log
    ray_data = logging.getLogger("ray.data")
    ray_data.addHandler(mine)
    try:
        assert ingest(tmp_path / "second", footage[:1], "ray")[0].ingested == 1
        assert mine.level == logging.NOTSET
    finally:
        ray_data.removeHandler(mine)


def test_a_read_started_again_passes_on_only_the_rows_after_those_passed(footage, ray_cluster, monkeypatch):
    """``read_here`` as a try after one whose worker died: the snippets passed on before are
    decoded again but not sent, and only where they are the same (their digest); a file that
    now gives other snippets, or fewer, fails instead of mixing two reads. Parts of one row
    each here, so that a part boundary falls between every row."""
    from indexer.runners import ray_worker
    from indexer.stages.read import ReadSpec
    monkeypatch.setattr(ray_worker, "PART_BYTES", 1)
    task, spec = {"video_id": 7, "path": str(footage[7])}, ReadSpec.of(4, 8, 32)
    parts = list(ray_worker.read_here(task, spec))
    rows = [r for part in parts for r in part]
    assert [r["kind"] for r in rows] == ["snippet"] * 3 + ["end"] and len(parts) == 4
    assert {r["read_node"] for r in rows} == {ray_cluster.get_runtime_context().get_node_id()}
    passed = ray_worker.Passed()
    for r in rows[:2]:
        passed.add(r)
    again = [r for part in ray_worker.read_here(task, spec, passed.count, passed.digest) for r in part]
    assert again == rows[2:]
    other = ray_worker.Passed()
    other.add(rows[1])  # not the first snippet: another file's
    changed = [r for part in ray_worker.read_here(task, spec, 1, other.digest) for r in part]
    assert [(r["kind"], r["error"]) for r in changed] == \
        [("error", f"{footage[7]}: changed while it was read: a read started again after its reader "
                   "died did not find the snippets passed on before")]
    fewer = [r for part in ray_worker.read_here(task, spec, 4, passed.digest) for r in part]
    assert [r["kind"] for r in fewer] == ["error"] and "changed while it was read" in fewer[0]["error"]


def test_the_writer_takes_a_row_sent_twice_once_and_fails_a_video_whose_reads_disagree(tmp_path, footage):
    """What a runner that reads a file again may send: rows that came before. A row that comes
    twice counts once (the video is written whole, once); one that differs from the row it
    repeats fails its video alone, with nothing of it written."""
    from tests.test_pipeline import Stages
    stages = Stages(tmp_path, HashSpace(hash_config()))
    catalog, store, report, writer = stages.catalog, stages.store, stages.report, stages.writer
    same, differs = stages.planner.plan_one(0, footage[0]), stages.planner.plan_one(1, footage[7])
    for item in (same, differs):
        writer.planned(item)
    rows = {item.video_id: stages.rows(item) for item in (same, differs)}
    *snippets, end = rows[same.video_id]
    for r in snippets + snippets[:2] + [end] + snippets[1:]:
        writer.accept(r)
    *snippets, end = rows[differs.video_id]
    for r in snippets[:2] + [dict(snippets[1], start=snippets[1]["start"] + 0.5)] + snippets[2:] + [end]:
        writer.accept(r)
    assert report.ingested == 1 and report.snippets == len(rows[same.video_id]) - 1
    assert report.failed == [{"path": str(footage[7]), "error": f"{footage[7]}: two reads of it gave different "
                              "snippets at 1: it changed while it was read"}]
    assert catalog.video(differs.video_id).status != "ok" and not (tmp_path / "thumbs" / str(differs.video_id)).exists()
    assert store.index.count == len(rows[same.video_id]) - 1 and not writer.unfinished()


def ray_workers() -> dict[int, tuple[str, int]]:
    """The worker processes of this process's Ray cluster (its descendants whose title Ray set
    to ``ray::...``): pid -> (title, the memory it holds of its own now, ``RssAnon``: not the
    object store's shared pages, which each worker that reads an object maps)."""
    psutil = pytest.importorskip("psutil", reason="psutil (a dependency of Ray) is not installed")
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = proc.cmdline()[0]
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except (psutil.Error, IndexError, OSError):
            continue
        held = next((line.split()[1] for line in status.splitlines() if line.startswith("RssAnon:")), None)
        if title.startswith("ray::") and held is not None:
            found[proc.pid] = (title, int(held) * 1024)
    return found


class PeakMemory:
    """The most memory (``ray_workers``) a worker of this process's Ray cluster held during a
    ``with`` block, and the titles its workers had, looked at every 50 ms from a thread."""

    def __init__(self):
        self.most, self.titles = 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while True:
            for title, held in ray_workers().values():
                self.most, self.titles = max(self.most, held), self.titles | {title}
            if self._stop.wait(0.05):
                return

    def __enter__(self):
        ray_workers()  # skips the test here where psutil is missing
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_the_memory_of_a_ray_ingest_does_not_grow_with_the_videos_length(tmp_path, ray_cluster):
    """A video of 25 snippets, then one of 500 (33 min of 1 fps frames, read at 224 px: 574 MiB
    of frames), each through the whole Ray run: the most memory a worker of the cluster held
    grew by less than a quarter of the long video's frames (the read passes them on in parts
    and blocks of ~8 MB, as they come: 200 -> 235 MiB here), where a read that gives a video's
    rows at once holds them all, and more (200 -> 1,802 MiB)."""
    from indexer.runners.ray import RayOptions
    space = HashSpace(hash_config())
    space.frame_size = 224  # what the real spaces read (the actors' copies take any size)
    peaks = []
    for seconds in (100, 2000):
        video = write_video(tmp_path / f"{seconds}.mp4", moving_frames(seconds, 32, 32, seed=11), fps=1)
        with PeakMemory() as memory:
            report, _, _, _ = ingest(tmp_path / str(seconds), [video], "ray", space=space,
                                     ray_options=RayOptions(encoders=1))
        assert (report.ingested, report.snippets) == (1, seconds // 4)
        assert any("read_here" in title for title in memory.titles)  # the reader was seen
        peaks.append(memory.most)
    frames = 500 * 8 * 224 * 224 * 3
    assert peaks[1] - peaks[0] < frames / 4, f"the most a worker held: {peaks[0] >> 20} MiB (25 " \
        f"snippets), {peaks[1] >> 20} MiB (500 snippets, {frames >> 20} MiB of frames)"


def test_a_read_whose_reader_is_killed_goes_on_from_the_rows_it_passed_on(tmp_path, ray_cluster):
    """The process reading a video (``read_here``, 40 snippets at 224 px: 6 parts) killed once
    its first part was taken: ``read_on_node`` reads the file again, skips the snippets it
    passed on (the same ones, by their digest) and gives the rest: every row once, as one read
    gives them. The reader is still at work when it is killed, since it may run only
    ``PARTS_AHEAD`` parts ahead of what was taken."""
    from indexer.runners import ray_worker
    from indexer.stages.read import ReadSpec, read_video
    video = write_video(tmp_path / "v.mp4", moving_frames(160, 32, 32, seed=12), fps=1)
    task, spec = {"video_id": 5, "path": str(video)}, ReadSpec.of(4, 8, 224)
    rows = ray_worker.read_on_node(task, spec)
    got = [next(rows)]
    readers = [pid for pid, (title, _) in ray_workers().items() if title == "ray::read_here"]
    assert len(readers) == 1
    os.kill(readers[0], signal.SIGKILL)
    got += list(rows)
    assert [{k: v for k, v in r.items() if k != "read_node"} for r in got] == list(read_video(task, spec))
    assert readers[0] not in ray_workers()
