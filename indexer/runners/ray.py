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
import time
from collections.abc import Iterable
from dataclasses import dataclass

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
    try:
        from ray.data import ActorPoolStrategy
        gpus = gpus_to_request(ray, options.gpus_per_encoder)
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))  # one video per read task
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
        if started_here:
            ray.shutdown()


def _quiet_progress(ray) -> None:
    """No progress bars or per-operator logs on the driver's terminal unless asked (-vv)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def _plain(value):
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
