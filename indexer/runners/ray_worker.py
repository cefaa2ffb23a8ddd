"""What the Ray runner runs on the worker nodes: the read task and the encoder actor.

A worker node is another machine: it has the footage only where a shared file system puts it
at the driver's paths, and it has neither the driver's home nor its cache. So:

- ``read_on_node`` opens the file first, and a file this node cannot open fails alone with a
  message that names the node and says what a cluster needs (the driver found the file; a
  plain "no such file" would look like the file's own fault);
- ``RayEncoder`` builds its space over the cache files the driver sent
  (``ConceptSpace.cache_files``: lite's ONNX graphs), so it runs the driver's graph, not an
  export of its own (which needs a writable cache, and failing that falls back to torch): in
  the driver's cache folder where this node sees it with the same bytes (one machine, a
  shared home), else in a copy under this node's Ray temp folder;
- every row leaves marked with its node (``read_node``, ``encode_node``) and what the actor
  ran (``encoder``, the space's summary once loaded), for the driver's report and run record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.stages.encode import Encoder, SpaceSpec
from indexer.stages.read import ReadSpec, read_video_rows, row


def node_id() -> str:
    import ray
    return ray.get_runtime_context().get_node_id()


def node_name() -> str:
    """This node as a person finds it: its address and the start of its Ray id."""
    import ray
    return f"{ray.util.get_node_ip_address()} ({node_id()[:12]})"


def read_on_node(task: dict, spec: ReadSpec) -> list[dict]:
    """``read_video_rows`` on this node, each row marked with it; a file this node cannot open
    is one error row that says where and why."""
    path = str(task["path"])
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        rows = [row(video_id=int(task["video_id"]), path=path, kind="error",
                    error=f"{path}: cannot be opened on Ray node {node_name()} ({exc.strerror or exc}), "
                          "though the driver found it: a cluster needs the footage at the same path on "
                          "every node (a shared file system)")]
    else:
        rows = read_video_rows(task, spec)
    here = node_id()
    return [dict(r, read_node=here) for r in rows]


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
        if path.is_file() and path.stat().st_size == len(data):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return folder


class RayEncoder(Encoder):
    """The encode stage as a Ray actor: the space over the driver's cache files, and every
    output row marked with this node and what the actor ran."""

    def __init__(self, spec: SpaceSpec, shipped: dict | None = None):
        if shipped:
            kwargs = dict(spec.kwargs)
            kwargs["cache_dir"] = str(cache_for(shipped, kwargs.get("cache_dir")))
            spec = replace(spec, kwargs=tuple(sorted(kwargs.items())))
        super().__init__(spec=spec)  # builds and loads the model
        self.node = node_id()
        self.summary = self.space.encoder_summary  # loaded: what runs, not what was asked

    def __call__(self, batch: dict) -> dict:
        out = super().__call__(batch)
        count = len(next(iter(out.values()))) if out else 0
        out["encode_node"] = np.array([self.node] * count, dtype=object)
        out["encoder"] = np.array([self.summary] * count, dtype=object)
        return out
