"""Recovery and follow benchmarks for the change log (storage.changes, storage.index_store).

``recovery``: an index of N vectors built through the catalog (videos committed with
``complete_video``, then a rebuild and a checkpoint), then a simulated crash that leaves 1% of
the vectors committed but never indexed. Reported side by side in one run: the time to open
by replaying the log (load + apply the missing entries) and the time of the full rebuild the
index needed before the log (train, add, tune from the catalog).

``follow``: a real ``vidsonar ingest`` subprocess commits generated videos one by one while
this process's IndexStore polls ``follow()`` (as the server's follower thread does); the
latency of each video is the time from its change-log entry's commit stamp to the moment the
follower's index returns its vectors.

Both print and save JSON under benchmarks/results/; timings are figures, never assertions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 384  # the lite space's dimension
PER_VIDEO = 1000  # snippets per synthetic video (about 67 minutes of 4 s windows)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit(catalog, space: str, video: int, vectors: np.ndarray) -> int:
    from storage.catalog import SnippetRecord
    from storage.ids import pack_snippet_id
    vid = catalog.reserve_video(f"/bench/{video}.mp4", f"bench-{video}", 1, None)
    records = [SnippetRecord(pack_snippet_id(vid, i), i, 4.0 * i, 4.0 * i + 4, [4.0 * i])
               for i in range(len(vectors))]
    return catalog.complete_video(vid, space=space, info={"duration": 4.0 * len(vectors)},
                                  snippets=records, vectors=vectors)


def run_recovery(n: int = 100_000, crash_fraction: float = 0.01, workdir: Path | None = None,
                 log=print) -> dict:
    from benchmarks.synthetic import Generator
    from storage import changes
    from storage.catalog import Catalog
    from storage.index_store import IndexStore
    root = Path(tempfile.mkdtemp(prefix="recovery-", dir=workdir))
    try:
        catalog = Catalog(f"sqlite:///{root / 'catalog.db'}")
        gen = Generator(dim=DIM)
        space, videos = "bench", max(1, n // PER_VIDEO)
        late = max(1, round(videos * crash_fraction))
        t = time.perf_counter()
        for v in range(videos - late):
            _commit(catalog, space, v, gen.sample(PER_VIDEO, stream=v))
        log(f"committed {(videos - late) * PER_VIDEO} vectors in {time.perf_counter() - t:.0f} s")
        store = IndexStore(catalog, space, DIM, root / "index")
        t = time.perf_counter()
        store.rebuild()
        first_build = time.perf_counter() - t
        store.checkpoint()
        factory = store.index.manifest.factory
        log(f"built {factory} over {store.index.count} vectors in {first_build:.1f} s")
        store.close()
        for v in range(videos - late, videos):  # committed, never indexed: the crash
            _commit(catalog, space, v, gen.sample(PER_VIDEO, stream=v))
        missing = late * PER_VIDEO
        t = time.perf_counter()
        replayed = IndexStore(catalog, space, DIM, root / "index")
        count = replayed.index.count
        replay_s = time.perf_counter() - t
        assert replayed.rebuilds == 0 and count == videos * PER_VIDEO, "replay did not catch up"
        log(f"open with replay of {replayed.replayed} entries ({missing} vectors): {replay_s:.2f} s")
        t = time.perf_counter()
        rebuilt = IndexStore(catalog, space, DIM, root / "rebuilt")
        rebuilt.rebuild()
        rebuild_s = time.perf_counter() - t
        log(f"full rebuild of {rebuilt.index.count} vectors: {rebuild_s:.2f} s")
        result = {"benchmark": "recovery", "n": videos * PER_VIDEO, "dim": DIM,
                  "factory": factory, "uncommitted_vectors": missing,
                  "entries_replayed": replayed.replayed, "replay_open_s": round(replay_s, 3),
                  "full_rebuild_s": round(rebuild_s, 3),
                  "speedup": round(rebuild_s / replay_s, 1) if replay_s else None,
                  "seq": changes.last_seq(catalog), "load_average": _load(),
                  "cores": os.cpu_count(),
                  "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        log(f"replay is {result['speedup']}x faster than the rebuild")
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_follow(videos: int = 20, poll_s: float = 0.2, workdir: Path | None = None,
               log=print) -> dict:
    """p50/p99 seconds from a CLI commit to another process's store returning the video."""
    from samples.footage import write_video
    from search.archive import Archive
    from storage.changes import VectorChange
    root = Path(tempfile.mkdtemp(prefix="follow-", dir=workdir))
    try:
        clips = root / "clips"
        rng = np.random.default_rng(0)
        for i in range(videos):
            frames = [np.full((64, 64, 3), (i * 11 + f * 3) % 255, np.uint8) +
                      rng.integers(0, 40, (64, 64, 3), dtype=np.uint8) for f in range(24)]
            write_video(clips / f"clip{i:02d}.mp4", frames, fps=12)
        home = root / "home"
        archive = Archive(str(home), "lite")
        store = archive.store
        _ = store.index  # the follower's copy, opened before the ingest starts
        env = {**os.environ, "VIDSONAR_HOME": str(home), "VIDSONAR_SPACE": "lite"}
        cli = Path(sys.executable).with_name("vidsonar")
        proc = subprocess.Popen([str(cli), "ingest", str(clips), "--window", "1.0"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seen: dict[int, float] = {}

        def record() -> None:
            store.follow()
            ids = store.index._label_ids()
            now = time.time()
            for vid in set((ids[ids >= 0] >> 20).tolist()) - set(seen):
                seen[vid] = now

        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline and len(seen) < videos:
                record()
                if proc.poll() is not None:  # the ingest ended: one last look
                    record()
                    break
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:
                proc.terminate()
            _, err = proc.communicate(timeout=60)
        import sqlalchemy as sa
        with archive.catalog.session() as s:
            stamps = dict(s.execute(sa.select(VectorChange.video_id, VectorChange.created_at)
                                    .where(VectorChange.op == "add")).all())
        lat = [seen[v] - stamps[v].replace(tzinfo=dt.timezone.utc).timestamp()
               for v in seen if v in stamps]
        lat_arr = np.array(lat) if lat else np.zeros(1)
        result = {"benchmark": "follow", "videos": videos, "seen": len(seen),
                  "poll_s": poll_s, "p50_s": round(float(np.percentile(lat_arr, 50)), 3),
                  "p99_s": round(float(np.percentile(lat_arr, 99)), 3),
                  "max_s": round(float(lat_arr.max()), 3), "ingest_rc": proc.returncode,
                  "load_average": _load(), "cores": os.cpu_count(),
                  "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if proc.returncode not in (0, None):
            result["ingest_stderr"] = err.decode(errors="replace")[-2000:]
        log(f"follow latency over {len(lat)} commits (poll every {poll_s} s): "
            f"p50 {result['p50_s']} s, p99 {result['p99_s']} s")
        store.close()
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def save(result: dict, out: Path = RESULTS) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    name = f"{result['benchmark']}_{result.get('n', result.get('videos'))}.json"
    path = out / name
    path.write_text(json.dumps(result, indent=1))
    return path
