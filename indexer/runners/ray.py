"""The Ray runner: Ray Data over the plan, the writer on the driver.

    plan (driver) -> from_items (one block per video) -> flat_map(read_video_rows)
      -> map_batches(Encoder, compute=ActorPoolStrategy(size=N), num_gpus=G) -> Writer (driver)

``ray.data.read_videos`` is not used: it yields one row per frame (decord) and cannot give
exact 8-frame windows; the read stage is vidsonar's own PyAV decoder. Each encoder actor
builds its model once from a ``SpaceSpec``. With no address a local cluster is started
(all CPUs, the GPUs Ray detects, dashboard off, a bounded object store) and stopped at the
end; a cluster already initialised in this process (tests, notebooks) is used as it is.

GPUs are requested only where the cluster has them: an actor asking ``num_gpus=1`` of a
cluster without a GPU waits forever, so the request is dropped with a warning instead.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.stages.encode import Encoder, SpaceSpec
from indexer.stages.plan import READ, PlanItem
from indexer.stages.read import ReadSpec, read_video_rows
from indexer.stages.write import Writer
from vidsonar.errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_OBJECT_STORE_MB = 1024  # Ray's default is 30% of RAM: too much on a shared machine


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local cluster
    encoders: int = 1  # encoder actors
    gpus_per_encoder: float = 0.0
    object_store_mb: int | None = None  # for a local cluster; $VIDSONAR_RAY_OBJECT_STORE_MB
    manifest_rows: int = 50_000  # plans longer than this go to Ray as a Parquet manifest


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("vidsonar[ray]", "the Ray ingestion runner (--runner ray)") from exc
    return ray


def start_cluster(options: RayOptions):
    """Connect to (or start) a cluster; returns (ray, whether this call started it)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if options.address:
        ray.init(address=options.address, **quiet)
        return ray, True
    store_mb = options.object_store_mb or int(os.environ.get("VIDSONAR_RAY_OBJECT_STORE_MB",
                                                             DEFAULT_OBJECT_STORE_MB))
    ray.init(num_cpus=os.cpu_count(), object_store_memory=store_mb * 1024 * 1024, **quiet)
    return ray, True


def gpus_to_request(ray, wanted: float) -> float:
    """``wanted`` if the cluster has that many GPUs, else 0 (and say so)."""
    have = float(ray.cluster_resources().get("GPU", 0))
    if wanted > 0 and have < wanted:
        log.warning("--gpus-per-encoder %s asked of a cluster with %s GPUs: encoding on CPU "
                    "(an actor waiting for a GPU that does not exist would wait forever)", wanted, have)
        return 0.0
    return float(wanted)


def run_ray(plan: Iterable[PlanItem], space: SpaceSpec, spec: ReadSpec, writer: Writer, report,
            options: RayOptions = RayOptions(), batch_snippets: int = 16) -> None:
    if options.encoders < 1:
        raise InputError(f"--encoders must be at least 1, got {options.encoders}")
    items = list(plan)  # the driver plans everything first: Ray needs the whole list
    for item in items:
        writer.planned(item)
    tasks = [item.task() for item in items if item.action == READ]
    if not tasks:
        return
    started = time.perf_counter()
    ray, started_here = start_cluster(options)
    report.startup_seconds += time.perf_counter() - started
    _quiet_progress(ray)
    manifest = None
    try:
        from ray.data import ActorPoolStrategy
        gpus = gpus_to_request(ray, options.gpus_per_encoder)
        ds, manifest = _dataset(ray, tasks, options.manifest_rows)
        ds = ds.flat_map(functools.partial(read_video_rows, spec=spec))
        ds = ds.map_batches(Encoder, fn_constructor_kwargs={"spec": space},
                            compute=ActorPoolStrategy(size=options.encoders),
                            num_gpus=gpus or None, batch_size=batch_snippets, batch_format="numpy")
        with report.timed("ray"):
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                names = list(batch)
                for i in range(len(batch[names[0]])):
                    writer.accept({k: _plain(batch[k][i]) for k in names})
    finally:
        if manifest is not None:
            shutil.rmtree(manifest, ignore_errors=True)
        if started_here:
            ray.shutdown()


def _dataset(ray, tasks: list[dict], manifest_rows: int):
    """The plan as a dataset: in memory for one read task per video, or, for plans of millions
    of files (too big to ship inside the job), a Parquet manifest the cluster reads in blocks.
    The manifest must be on storage every node sees (the local disk suffices for one machine;
    set $VIDSONAR_RAY_MANIFEST_DIR to a shared folder for a cluster)."""
    if len(tasks) <= manifest_rows:
        return ray.data.from_items(tasks, override_num_blocks=len(tasks)), None
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = Path(tempfile.mkdtemp(prefix="vidsonar-manifest-", dir=os.environ.get("VIDSONAR_RAY_MANIFEST_DIR")))
    path = folder / "plan.parquet"
    pq.write_table(pa.Table.from_pylist(tasks), path, row_group_size=1)
    blocks = min(len(tasks), max(1, int(ray.cluster_resources().get("CPU", 1)) * 4))
    return ray.data.read_parquet(str(path), override_num_blocks=blocks), folder


def _quiet_progress(ray) -> None:
    """No progress bars or per-operator logs on the driver's terminal unless asked (-vv)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def _plain(value):
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
