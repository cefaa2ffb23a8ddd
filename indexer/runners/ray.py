"""The Ray runner: Ray Data over the plan, the writer on the driver.

    plan (driver) -> from_items (one block per video) -> flat_map(read_on_node)
      -> map_batches(RayEncoder, compute=ActorPoolStrategy(size=N), num_gpus=G) -> Writer (driver)

A video's rows stream: its read yields them as they are decoded, and Ray Data passes them on
in blocks of ``READ_BLOCK_BYTES``, so the read of a video of any length holds a few blocks of
frames, as the local runner's does, and the writer takes its rows in any order.

``ray.data.read_videos`` is not used: it yields one row per frame (decord) and cannot give
exact 8-frame windows; the read stage is vidsonar's own PyAV decoder. Each encoder actor
builds its model once from a ``SpaceSpec``. With no address a local cluster is started
(all CPUs, the GPUs Ray detects, dashboard off, a bounded object store) and stopped at the
end; a cluster already initialised in this process (tests, notebooks) is used as it is.

On a cluster (what runs on the workers is ``indexer.runners.ray_worker``): the footage must
be at the same path on every node (a file a node cannot open fails alone, saying so); what
the space made from its models on the driver (lite's ONNX graphs, ``ConceptSpace.cache_files``)
travels to the actors through the object store, so a node needs neither the driver's home nor
an export of its own, and every node runs the same graph; the driver's ``VIDSONAR_*``
variables, but its secrets, reach the workers in the stages' runtime environment. Rows come
back marked with the node that read or embedded them and what the actor ran: the report says
where the work ran, and the run records what made its vectors.

GPUs are requested only where the cluster has them: an actor asking ``num_gpus=1`` of a
cluster without a GPU waits forever, so the request is dropped with a warning instead.

When the cluster misbehaves mid-run (a node lost whose work the rest cannot take up, the head
lost, an encoder actor that cannot load its space or dies each time it does), the driver ends
the run with one ``ClusterError`` line rather than wait for ever, or be ended by Ray
(``indexer.runners.ray_faults``), having written every video whose rows all came; a file
that kills the process reading it fails alone (``ray_worker.read_on_node``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.runners.ray_faults import Watch, bound_ray_head_wait, head_patience, one_line, patience, rows_of
from indexer.runners.ray_worker import RayEncoder, files_key, read_on_node
from indexer.stages.encode import SpaceSpec
from indexer.stages.plan import READ, PlanItem
from indexer.stages.read import ReadSpec
from indexer.stages.write import Writer
from vidsonar.errors import ClusterError, InputError, MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_OBJECT_STORE_MB = 1024  # Ray's default is 30% of RAM: too much on a shared machine
#: the blocks of the run's dataset (Ray Data's default, 128 MiB, is ~100 snippets of frames):
#: a read task holds the one it fills and the two it may send ahead, an encoder actor a batch's
READ_BLOCK_BYTES = 8 * 1024 * 1024
#: how long the driver waits for a TCP answer at --ray-address before calling it unreachable
#: (``ray.init`` itself retries for minutes)
CONNECT_SECONDS = 5.0
#: driver variables that never travel to the workers: credentials
SECRET = re.compile(r"TOKEN|KEY|PASSWORD|SECRET|DB_URL")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local cluster
    encoders: int = 1  # encoder actors
    gpus_per_encoder: float = 0.0
    object_store_mb: int | None = None  # for a local cluster; $VIDSONAR_RAY_OBJECT_STORE_MB
    manifest_rows: int = 50_000  # plans longer than this go to Ray in blocks of many files


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("vidsonar[ray]", "the Ray ingestion runner (--runner ray)") from exc
    return ray


@functools.lru_cache(maxsize=16)  # an address found good once (a run checks before its work)
def check_address(address: str) -> None:
    """Raise ``InputError`` naming ``address`` where nothing answers at it, or no Ray head that
    takes this driver (``_check_head``): ``ray.init`` would retry for minutes. ``auto`` (Ray
    finds the cluster) is left to Ray."""
    if address in ("auto", "local"):
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise InputError(f"--ray-address {address!r} is not HOST:PORT (the address `ray start --head` "
                         "prints, such as 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise InputError(f"no Ray cluster answers at --ray-address {address} ({exc.strerror or exc}): "
                         "start one with `ray start --head` and give the address it prints, or "
                         "leave --ray-address out for a local cluster") from exc
    _check_head(address)


def start_cluster(options: RayOptions):
    """Connect to (or start) a cluster; returns (ray, whether this call started it)."""
    if options.address:
        bound_ray_head_wait(head_patience())
    ray = import_ray()
    _cluster_messages_to_stderr()
    if options.address:
        check_address(options.address)
    if ray.is_initialized():
        return ray, False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if options.address:
        try:
            ray.init(address=options.address, **quiet)
        except Exception as exc:  # noqa: BLE001 - Ray raises several kinds; all mean "not connected"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot join the Ray cluster at --ray-address {options.address}: {reason}") from exc
        return ray, True
    store_mb = options.object_store_mb or int(os.environ.get("VIDSONAR_RAY_OBJECT_STORE_MB",
                                                             DEFAULT_OBJECT_STORE_MB))
    # "local": a cluster of its own, even where $RAY_ADDRESS or the last `ray start` on this
    # machine names another (ray.init() would join that one, and refuse num_cpus there)
    ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=store_mb * 1024 * 1024, **quiet)
    return ray, True


def _cluster_messages_to_stderr() -> None:
    """Ray prints what the cluster tells a driver (a worker that died, a task it retries) on
    stdout, where ``ingest --json`` prints its report: those lines go to stderr instead. Ray's
    own function (private; Ray is pinned), wrapped once per process."""
    from ray._private import worker
    printer = worker.print_to_stdstream
    if getattr(printer, "vidsonar", False):
        return

    def to_stderr(data, ignore_prefix: bool):
        return printer(dict(data, is_err=True), ignore_prefix)
    to_stderr.vidsonar = True
    worker.print_to_stdstream = to_stderr


def _check_head(address: str) -> None:
    """Raise ``InputError`` where what answers at ``address`` is not a Ray head that takes this
    driver: one try of Ray's own client of the head's GCS, which refuses a missing or wrong
    token at once (``ray.init`` tries 20 times, a second apart, and then names no cause) and
    gives up on a port that is not a GCS (the dashboard's, say) in tens of seconds (``ray.init``
    takes minutes). Anything else is left to ``ray.init``."""
    if address.startswith("ray://") or address in ("auto", "local"):
        return
    bound_ray_head_wait(head_patience())  # often the first use of Ray in the process
    try:
        from ray._raylet import GcsClient  # Ray's client of the head (private; Ray is pinned)
        from ray.exceptions import AuthenticationError, RpcError
    except ImportError:
        return
    try:
        GcsClient(address=address)
    except AuthenticationError as exc:
        refusal = str(exc).split(". ")[0]
        raise InputError(f"the Ray cluster at --ray-address {address} refused this driver ({refusal}): "
                         "it uses token authentication, so vidsonar needs its token too: set "
                         "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or put the token in "
                         "~/.ray/auth_token)") from exc
    except RpcError as exc:
        raise InputError(f"what answers at --ray-address {address} is not a Ray head ({exc}): give the "
                         "address `ray start --head` prints (its GCS port, 6379 unless --port says "
                         "otherwise; not the dashboard's)") from exc
    except Exception:  # noqa: BLE001 - not a refusal: ray.init reports it
        return


def gpus_to_request(ray, wanted: float) -> float:
    """``wanted`` if the cluster has that many GPUs, else 0 (and say so)."""
    have = float(ray.cluster_resources().get("GPU", 0))
    if wanted > 0 and have < wanted:
        log.warning("--gpus-per-encoder %s asked of a cluster with %s GPUs: encoding on CPU "
                    "(an actor waiting for a GPU that does not exist would wait forever)", wanted, have)
        return 0.0
    return float(wanted)


def worker_env() -> dict[str, str]:
    """The driver's ``VIDSONAR_*`` variables that the workers' stages read alike (such as
    ``VIDSONAR_LITE_RUNTIME``), credentials left out: a worker process has its own node's
    environment, not the driver's."""
    return {k: v for k, v in os.environ.items() if k.startswith("VIDSONAR_") and not SECRET.search(k)}


def run_ray(plan: Iterable[PlanItem], space: SpaceSpec, spec: ReadSpec, writer: Writer, report,
            options: RayOptions = RayOptions(), batch_snippets: int = 16,
            cache_files: Callable[[], list[Path]] = list) -> None:
    """Run the plan on Ray. ``cache_files``: the space's ``ConceptSpace.cache_files``, asked only
    when there is something to encode (it may load the models on the driver)."""
    if options.encoders < 1:
        raise InputError(f"--encoders must be at least 1, got {options.encoders}")
    items = list(plan)  # the driver plans everything first: Ray needs the whole list
    for item in items:
        writer.planned(item)
    # a worker's working folder is its own node's, not the driver's: tasks name files by their
    # full path (``PlanItem.key``), and messages by the path as given (``_as_given``)
    given = {item.key: str(item.path) for item in items if item.action == READ}
    tasks = [dict(item.task(), path=item.key) for item in items if item.action == READ]
    if not tasks:
        return
    started = time.perf_counter()
    ray, started_here = start_cluster(options)
    report.startup_seconds += time.perf_counter() - started
    _quiet_progress(ray)
    tally = _Tally()
    try:
        from ray.data import ActorPoolStrategy
        gpus = gpus_to_request(ray, options.gpus_per_encoder)
        with report.timed("ship_models"):
            shipped = _ship(ray, space, cache_files())
        env = {"runtime_env": {"env_vars": worker_env()}} if worker_env() else {}
        ds = _dataset(ray, tasks, options.manifest_rows)
        ds = ds.flat_map(functools.partial(read_on_node, spec=spec), **env)
        ds = ds.map_batches(RayEncoder, fn_constructor_kwargs={"spec": space, "shipped": shipped},
                            compute=ActorPoolStrategy(size=options.encoders),
                            num_gpus=gpus or None, batch_size=batch_snippets, batch_format="numpy", **env)
        watch = Watch(ray, {"CPU": 1.0, "GPU": gpus} if gpus else {"CPU": 1.0}, options.encoders,
                      patience(), head_patience(), _head(ray, options.address))
        with report.timed("ray"):
            try:
                executors = _keep_executors(ds)
                for batch in rows_of(ds.iter_batches(batch_size=None, batch_format="numpy"), watch,
                                     functools.partial(_abandon, executors)):
                    names = list(batch)
                    for i in range(len(batch[names[0]])):
                        r = _as_given({k: _plain(batch[k][i]) for k in names}, given)
                        tally.add(r)
                        writer.accept(r)
            except Exception as exc:
                failure = one_line(exc)
                if failure is None:
                    raise
                log.debug("the Ray run failed", exc_info=True)
                again = "the same command, once the cluster is back," if watch.head_lost else \
                    "the same command again"
                raise ClusterError(f"{failure}; the {report.ingested} videos this run wrote are kept, "
                                   f"and {again} does only what is missing") from None
        report.nodes = tally.nodes(ray)
        report.encoder = tally.encoder()
    finally:
        if started_here:
            ray.shutdown()


def _head(ray, address: str | None) -> str | None:
    """The head's GCS for ``Watch`` to knock at: HOST:PORT as --ray-address gave it, else as
    Ray found it. None for a Ray Client (ray://): the address Ray has there is the one the head
    has on its own network, which this machine may not reach."""
    if address and address.startswith("ray://"):
        return None
    if address and address not in ("auto", "local"):
        return address
    try:
        return ray.get_runtime_context().gcs_address or None
    except Exception:  # noqa: BLE001 - a driver that cannot say goes without the head's watch
        return None


def _keep_executors(ds) -> list:
    """Where the executors that run ``ds`` will be, for ``_abandon``: Ray Data hands its
    executor to the dataset only once the first rows are out (private: Ray is pinned; should
    that change, a run that gives up leaves its executor to stop with the driver)."""
    made: list = []
    create = getattr(ds, "_create_executor", None)
    if create is not None:
        def create_and_keep():
            made.append(create())
            return made[-1]
        ds._create_executor = create_and_keep
    return made


def _abandon(executors: list) -> None:
    """Stop the executors of a dataset the driver gives up on before its end, so that none
    goes on calling Ray once the driver has left the cluster (Ray would start anew for it)."""
    for executor in executors:
        executor.shutdown(force=True)


def _ship(ray, space: SpaceSpec, paths: list[Path]) -> dict | None:
    """The space's cache files for the actors (``ray_worker.cache_for``): their names and
    digest, and their bytes as one object in the object store (in a list, so that Ray hands the
    actors the reference, and only those that need the bytes fetch them)."""
    if not paths:
        return None
    cache = Path(dict(space.kwargs).get("cache_dir") or Path(paths[0]).parent)
    files = {str(Path(p).relative_to(cache)): Path(p).read_bytes() for p in paths}
    log.info("sending %d cache files (%.1f MB) to the encoder actors", len(files),
             sum(map(len, files.values())) / 1e6)
    return {"key": files_key(files), "names": sorted(files), "data": [ray.put(files)]}


class _Tally:
    """Where the rows were read and embedded, and what the actors ran (``RayEncoder.summary``)."""

    def __init__(self):
        self.read: Counter[str] = Counter()  # node id -> videos read (end and error rows)
        self.encoded: Counter[str] = Counter()  # node id -> snippets embedded
        self.encoders: Counter[str] = Counter()  # summary -> snippets

    def add(self, r: dict) -> None:
        if r["kind"] == "snippet":
            self.encoded[r["encode_node"]] += 1
            self.encoders[r["encoder"]] += 1
        else:
            self.read[r["read_node"]] += 1

    def encoder(self) -> str:
        """What made the run's vectors; several variants (a node that fell back to torch) are
        all named, and warned about: their vectors differ by rounding."""
        if len(self.encoders) > 1:
            log.warning("the encoder actors ran different variants: %s",
                        "; ".join(f"{s} ({n} snippets)" for s, n in self.encoders.most_common()))
        return "; ".join(s for s, _ in self.encoders.most_common())

    def nodes(self, ray) -> list[dict]:
        """The driver's node and every node that did work: address, resources, work done, and
        whether it is still alive (a node lost mid-run did its part before it went)."""
        driver = ray.get_runtime_context().get_node_id()
        known = {n["NodeID"]: n for n in ray.nodes()}
        ids = [driver] + sorted((set(self.read) | set(self.encoded)) - {driver})
        return [{"node": i, "address": known.get(i, {}).get("NodeManagerAddress", ""),
                 "driver": i == driver, "alive": bool(known.get(i, {}).get("Alive")),
                 "videos_read": self.read[i], "snippets_encoded": self.encoded[i],
                 "resources": {k: v for k, v in known.get(i, {}).get("Resources", {}).items()
                               if not k.startswith("node:")}}
                for i in ids]


def _dataset(ray, tasks: list[dict], manifest_rows: int):
    """The plan as a dataset: one block per video, or, for plans of millions of files (a
    block each would swamp the scheduler), Arrow blocks of many files, a few per CPU. Either
    way it travels in Ray's object store, which every node reads; a file on the driver's disk
    would not be there on the others."""
    if len(tasks) <= manifest_rows:
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
    else:
        import pyarrow as pa
        table = pa.Table.from_pylist(tasks)
        blocks = min(len(tasks), max(1, int(ray.cluster_resources().get("CPU", 1)) * 4))
        size = -(-len(tasks) // blocks)
        ds = ray.data.from_arrow([table.slice(i, size) for i in range(0, len(tasks), size)])
    # the dataset's own copy of Ray Data's context: this run's datasets, not the process's others
    ds.context.target_max_block_size = READ_BLOCK_BYTES
    return ds


def _quiet_progress(ray) -> None:
    """No progress bars or per-operator logs on the driver's terminal unless asked (-vv); nor
    Ray Data's tracebacks of a failed run, which the run's own error (one line) replaces: they
    stay in its log file in the Ray session folder."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if not log.isEnabledFor(logging.DEBUG):
        logger = logging.getLogger("ray.data")
        logger.setLevel(logging.WARNING)
        for handler in logger.handlers:
            # Ray's terminal handler alone: not its log file's, nor handlers others put on this
            # logger (an application's log file; pytest's log capture, which it adds to every
            # logger that does not propagate, as this one does not), which keep their levels
            if type(handler).__module__.startswith("ray.") and type(handler).__name__ != "SessionFileHandler":
                handler.setLevel(logging.CRITICAL)


def _as_given(r: dict, given: dict[str, str]) -> dict:
    """A row that names its file as the user gave it, like the local runners' rows."""
    path = r["path"]
    if given.get(path, path) != path:
        r = dict(r, path=given[path], error=r["error"].replace(path, given[path]))
    return r


def _plain(value):
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
