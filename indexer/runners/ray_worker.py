"""What the Ray runner runs on the worker nodes: the read task and the encoder actor.

A worker node is another machine: it has the footage only where a shared file system puts it
at the driver's paths, and it has neither the driver's home nor its cache. So:

- ``read_on_node`` has each file read in a task of its own (``read_here``) and passes its rows
  on as they come, so a video of any length is read in the memory of a few parts
  (``PART_BYTES``, ``PARTS_AHEAD``) and Ray Data's blocks. A file that kills the process
  reading it (the kernel's OOM killer on a node short of memory, a crash in FFmpeg) is read
  again, ``READ_TRIES`` tries in all, and then fails alone, as a corrupt file does, where Ray
  would retry it for ever. The tries are its own, not Ray's: Ray's retry of a streaming task
  replays it and drops the parts the caller already took, checking only how many there were,
  not what they held; a try here reads the file again, skips the snippet rows already passed
  on, and checks by their digest that they are the same, so the writer never gets a row
  twice, nor rows of two reads that differ;
- ``read_here`` opens the file first, and a file this node cannot open fails alone with a
  message that names the node and says what a cluster needs (the driver found the file; a
  plain "no such file" would look like the file's own fault);
- ``RayEncoder`` that cannot load its space raises ``ClusterError`` naming the node and the
  real cause on one line, which the driver shows as it is (``indexer.runners.ray_faults``);
- ``RayEncoder`` builds its space over the cache files the driver sent
  (``ConceptSpace.cache_files``: lite's ONNX graphs), so it runs the driver's graph, not an
  export of its own (which needs a writable cache, and failing that falls back to torch): in
  the driver's cache folder where this node sees it with the same bytes (one machine, a
  shared home), else in a copy under this node's Ray temp folder;
- every row leaves marked with its node (``read_node``, ``encode_node``) and what the actor
  ran (``encoder``, the space's summary once loaded), for the driver's report and run record.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.stages.encode import Encoder, SpaceSpec
from indexer.stages.read import ReadSpec, read_video, row
from vidsonar.errors import ClusterError, VidsonarError

#: tries of a read whose worker process dies: a node lost, or a file that kills its reader
#: each time (it then fails alone)
READ_TRIES = 3
#: a read task sends its rows in parts of about this many bytes (each one object in Ray's
#: store): a few snippets of 224 px frames (about 1.2 MB each)
PART_BYTES = 8 * 1024 * 1024
#: parts a read task may have sent that were not taken yet: it waits beyond this (Ray's
#: generator backpressure), so decoding keeps pace with what takes the rows
PARTS_AHEAD = 2


def node_id() -> str:
    import ray
    return ray.get_runtime_context().get_node_id()


def node_name() -> str:
    """This node as a person finds it: its address and the start of its Ray id."""
    import ray
    return f"{ray.util.get_node_ip_address()} ({node_id()[:12]})"


def read_on_node(task: dict, spec: ReadSpec) -> Iterator[dict]:
    """The rows of ``read_here``, run in a task of its own on this node, as they come. Where its
    worker process dies, the file is read again (``READ_TRIES`` tries in all) from the row after
    the last one passed on; where it dies each time, the file fails alone with one error row,
    the rows passed on before it dropped by the writer. Ray Data streams what this yields in
    blocks, so memory does not grow with the video's length."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here, path = node_id(), str(task["path"])
    # soft: where this node is gone, a try runs elsewhere; while this task waits, its CPU is lent
    # to the read. Ray's own retries are off: see the module.
    read = _remote_read().options(max_retries=0, _generator_backpressure_num_objects=PARTS_AHEAD,
                                  scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True))
    passed = Passed()
    for _ in range(READ_TRIES):
        try:
            for part in read.remote(task, spec, passed.count, passed.digest):
                for r in ray.get(part):
                    yield r
                    if r["kind"] != "snippet":
                        return  # the video's last row: its end, or why it failed
                    passed.add(r)
        except _worker_deaths() as exc:
            death = exc
            continue
        # read_video always ends with an end or an error row: never here but by a bug
        yield row(video_id=int(task["video_id"]), path=path, kind="error", read_node=here,
                  error=f"{path}: its read on Ray node {node_name()} ended without the video's end")
        return
    cause = " ".join(str(death).strip().split("\n")[0].split())
    yield row(video_id=int(task["video_id"]), path=path, kind="error", read_node=here,
              error=f"{path}: the process reading it died, in each of {READ_TRIES} tries "
                    f"({type(death).__name__}: {cause} [Ray node {node_name()}]); a file that "
                    "crashes the decoder, or needs more memory than a node has, fails alone")


def read_here(task: dict, spec: ReadSpec, skip: int = 0, digest: str = "") -> Iterator[list[dict]]:
    """``read_video`` on this node in parts of about ``PART_BYTES``, each row marked with the
    node, after the first ``skip`` snippet rows (a try after one that died: their ``digest``,
    ``Passed``, must match, or the file fails, having changed under the reads). A file this node
    cannot open is one error row that says where and why."""
    path = str(task["path"])
    here = node_id()

    def failed(error: str) -> list[dict]:
        return [row(video_id=int(task["video_id"]), path=path, kind="error", error=error, read_node=here)]
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        yield failed(f"{path}: cannot be opened on Ray node {node_name()} ({exc.strerror or exc}), "
                     "though the driver found it: a cluster needs the footage at the same path on "
                     "every node (a shared file system)")
        return
    skipped, part, size = Passed(), [], 0
    changed = (f"{path}: changed while it was read: a read started again after its reader died "
               "did not find the snippets passed on before")
    for r in read_video(task, spec):
        r["read_node"] = here
        if skipped.count < skip and r["kind"] != "error":
            if r["kind"] != "snippet":  # fewer snippets than were passed on
                yield failed(changed)
                return
            skipped.add(r)
            if skipped.count == skip and skipped.digest != digest:
                yield failed(changed)
                return
            continue
        if r["kind"] == "error":
            part = []  # the video fails: its snippets not yet sent need no encoding
        part.append(r)
        size += len(r["frames"]) + len(r["thumb"])
        if size >= PART_BYTES or r["kind"] != "snippet":
            yield part
            part, size = [], 0


class Passed:
    """The snippet rows of a read so far: how many, and a digest of their times and thumbnails,
    by which a read started again knows it finds the same rows."""

    def __init__(self):
        self.count = 0
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, r: dict) -> None:
        self.count += 1
        self._hash.update(f"{r['idx']}|{r['start']!r}|{r['end']!r}|{r['frame_times']}|{len(r['thumb'])}|".encode())
        self._hash.update(r["thumb"])

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


@functools.cache
def _remote_read():
    import ray
    return ray.remote(read_here)


def _worker_deaths() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose process, or node, died under it (not a Python error)."""
    from ray import exceptions as e
    return (e.WorkerCrashedError, e.OutOfMemoryError, e.NodeDiedError, e.ObjectLostError)


def files_key(files: dict[str, bytes]) -> str:
    """A digest of named files' bytes: the driver's and a node's copies match by it."""
    key = hashlib.sha256()
    for name in sorted(files):
        key.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return key.hexdigest()[:16]


def cache_for(shipped: dict, driver_cache: str | None) -> Path:
    """Where this node finds the files the driver shipped (``{"key", "names", "data": [ref]}``):
    the driver's cache folder if this node reads the same files there, else a copy under the
    node's Ray temp folder, named by the files' digest and written once per node (each file put
    in place atomically, so actors starting together share it)."""
    import ray
    if driver_cache is not None:
        try:
            seen = {n: (Path(driver_cache) / n).read_bytes() for n in shipped["names"]}
            if files_key(seen) == shipped["key"]:
                return Path(driver_cache)
        except OSError:
            pass  # not there, or not readable, on this node
    folder = Path(ray.get_runtime_context().get_temp_dir()) / "vidsonar-cache" / shipped["key"]
    files = ray.get(shipped["data"][0])
    for name, data in files.items():
        path = folder / name
        if _holds(path, data):  # a damaged copy (a disk fault, a write cut short) is made again
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return folder


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


class RayEncoder(Encoder):
    """The encode stage as a Ray actor: the space over the driver's cache files, and every
    output row marked with this node and what the actor ran."""

    def __init__(self, spec: SpaceSpec, shipped: dict | None = None):
        if shipped:
            kwargs = dict(spec.kwargs)
            kwargs["cache_dir"] = str(cache_for(shipped, kwargs.get("cache_dir")))
            spec = replace(spec, kwargs=tuple(sorted(kwargs.items())))
        try:
            super().__init__(spec=spec)  # builds and loads the model
        except Exception as exc:
            # one line with the real cause: Ray hands the driver a creation task's traceback
            cause = str(exc) if isinstance(exc, VidsonarError) else f"{type(exc).__name__}: {exc}"
            cause = " ".join(cause.split())
            raise ClusterError(f"the encoder actor on Ray node {node_name()} cannot load concept space "
                               f"{spec.config.name!r}: {cause} (every node that runs an encoder needs "
                               "the space's weights at the paths its config names)") from exc
        self.node = node_id()
        self.summary = self.space.encoder_summary  # loaded: what runs, not what was asked

    def __call__(self, batch: dict) -> dict:
        out = super().__call__(batch)
        count = len(next(iter(out.values()))) if out else 0
        out["encode_node"] = np.array([self.node] * count, dtype=object)
        out["encoder"] = np.array([self.summary] * count, dtype=object)
        return out
