"""What the Ray runner's read of one long video holds in memory, on a local cluster.

    python -m benchmarks.ray_read_memory [--minutes 60] [--block-mib MIB] [--label NAME]

The video: ``--minutes`` of 32x32 frames of noise at 1 fps (PyAV, H.264), read at 224 px: a
4 s snippet's 8 frames are 1.2 MB, 1.03 GiB an hour. The read stage as ``run_ray`` builds it
(the plan's dataset, ``indexer.runners.ray._dataset``, then ``flat_map(read_on_node)``), its
rows taken on the driver and dropped: no encoder, so what is measured is the read's. A local
cluster of 2 CPUs and the runner's 1 GiB object store. Every 50 ms: each worker's own memory
(``RssAnon``, not the object store's shared pages) and the object store's primary copies, the
objects someone holds (what ``ray memory`` calls "needed"; its "usage" also counts objects
freed but not yet evicted, which Ray reclaims as it needs room); Ray's memory stats are a
private API (Ray is pinned). Reported: their peaks, the bytes Ray spilled to disk or wrote to
its fallback files, the wall seconds. ``--block-mib``: Ray Data's block size for the run in
place of the runner's (``READ_BLOCK_BYTES``). To compare two versions of the code, run this
file against each from outside both (``cd /tmp && PYTHONPATH=CHECKOUT python THIS_FILE``: Ray's workers
put the driver's working folder first on their path, and would import the code there); each
result is saved under its ``--label`` in benchmarks/results/ray_read_memory.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024


def write_video(path: Path, minutes: float) -> Path:
    """``minutes`` of 32x32 noise at 1 fps, written frame by frame (nothing held)."""
    from indexer.decode import pyav
    av = pyav()
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(1))
        stream.width = stream.height = 32
        stream.pix_fmt, stream.options = "yuv420p", {"preset": "veryfast"}
        for _ in range(int(minutes * 60)):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


class Watch:
    """Peaks of the cluster's workers' own memory (by title) and of the object store."""

    def __init__(self, ray):
        import psutil
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address
        self.psutil, self.reply = psutil, get_memory_info_reply
        self.state = get_state_from_address(ray.get_runtime_context().gcs_address)
        self.workers: dict[str, int] = {}  # title -> the most one worker of that title held
        self.held = self.used = self.fallback = self.spilled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(0.05):
                return

    def sample(self) -> None:
        for proc in self.psutil.Process().children(recursive=True):
            try:
                title = proc.cmdline()[0]
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except (self.psutil.Error, IndexError, OSError):
                continue
            if not title.startswith("ray::"):
                continue
            anon = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                         if line.startswith("RssAnon:")), 0)
            self.workers[title] = max(self.workers.get(title, 0), anon)
        stats = self.reply(self.state).store_stats
        self.held = max(self.held, stats.object_store_bytes_primary_copy)
        self.used = max(self.used, stats.object_store_bytes_used)
        self.fallback = max(self.fallback, stats.object_store_bytes_fallback)
        self.spilled = max(self.spilled, stats.spilled_bytes_total)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def _code() -> dict:
    """Which checkout's ``indexer`` ran, and its commit where it is a git checkout."""
    import indexer
    root = Path(indexer.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return {"path": str(root), "commit": commit}


def run(minutes: float, block_mib: float | None = None) -> dict:
    import ray
    from indexer.runners.ray import DEFAULT_OBJECT_STORE_MB, _dataset
    from indexer.runners.ray_worker import read_on_node
    from indexer.stages.read import ReadSpec
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "long.mp4", minutes)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=DEFAULT_OBJECT_STORE_MB * MIB)
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = _dataset(ray, [{"video_id": 1, "path": str(video)}], 50_000)
            if block_mib:
                ds.context.target_max_block_size = int(block_mib * MIB)
            block = ds.context.target_max_block_size
            ds = ds.flat_map(functools.partial(read_on_node, spec=ReadSpec.of(4, 8, 224)))
            snippets = frames = 0
            started = time.perf_counter()
            with Watch(ray) as watch:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    kinds = batch["kind"]
                    snippets += int((kinds == "snippet").sum())
                    frames += sum(len(f) for f in batch["frames"])
                    assert not (kinds == "error").any(), batch["error"]
            seconds = time.perf_counter() - started
        finally:
            ray.shutdown()
    reader = max(v for k, v in watch.workers.items() if "read_here" in k or "read_on_node" in k)
    return {"minutes": minutes, "block_mib": block / MIB, "snippets": snippets, "frames_mib": round(frames / MIB),
            "peak_read_worker_mib": round(reader / MIB),
            "peak_worker_mib_by_title": {k: round(v / MIB) for k, v in sorted(watch.workers.items())},
            "peak_object_store_held_mib": round(watch.held / MIB),
            "peak_object_store_used_mib": round(watch.used / MIB),
            "peak_object_store_fallback_mib": round(watch.fallback / MIB),
            "spilled_mib": round(watch.spilled / MIB),
            "seconds": round(seconds, 1), "ray": ray.__version__}


def save(label: str, result: dict, path: Path = RESULTS / "ray_read_memory.json") -> Path:
    from benchmarks.machine import cpu_model
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[label] = {**result, "code": _code(), "cpu": cpu_model(),
                   "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--block-mib", type=float, help="Ray Data's block size (default: the runner's)")
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()
    result = run(args.minutes, args.block_mib)
    print(f"{args.label}: {result['snippets']} snippets ({result['frames_mib']} MiB of frames) in "
          f"{result['seconds']} s; the most a read worker held: {result['peak_read_worker_mib']} MiB; "
          f"the object store held at most {result['peak_object_store_held_mib']} MiB (+ "
          f"{result['peak_object_store_fallback_mib']} MiB in fallback files), {result['spilled_mib']} MiB spilled")
    print(f"saved {save(args.label, result)}")


if __name__ == "__main__":  # pragma: no cover
    main()
