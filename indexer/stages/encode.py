"""The encode stage: a callable class that embeds snippet rows, batches spanning videos.

``Encoder`` is built from a ``SpaceSpec`` (the space's config and how to build it), so each
worker (a thread here, a Ray actor there) builds the model once, in ``__init__``; nothing
heavy is captured in a closure or pickled. Rows that are not snippets pass through. Frames
leave the row once embedded (the writer needs only the vector and the thumbnail).

Snippets of different videos may have different frame sizes (the short side is fixed, the
long one follows the aspect ratio), so a batch is embedded per frame shape. If embedding a
group fails, each video in it is tried alone, so only the video at fault fails.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig
from encoders.device import one_blas_thread
from indexer.stages.read import FILE_ERRORS, error_message, frames_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpaceSpec:
    """A concept space as data: its config and the class that builds it (picklable)."""
    config: SpaceConfig
    target: str  # "module:Class", from encoders.registry.FAMILIES
    kwargs: tuple[tuple[str, object], ...] = field(default=())

    @classmethod
    def of(cls, space: ConceptSpace) -> "SpaceSpec":
        """The spec that rebuilds ``space`` elsewhere (its family, config and build options).

        A wrapper that delegates to an ``inner`` space (the server's locked space) is
        unwrapped: a worker in another process needs the model, not this process's locks.
        """
        while isinstance(getattr(space, "inner", None), ConceptSpace):
            space = space.inner
        kwargs = {}
        if getattr(space, "cache_dir", None) is not None:  # lite's label-prompt cache
            kwargs["cache_dir"] = str(space.cache_dir)
        if getattr(space, "device_spec", None) is not None:  # open_clip spaces' device
            kwargs["device"] = space.device_spec
        target = f"{type(space).__module__}:{type(space).__qualname__}"
        return cls(space.config, target, tuple(sorted(kwargs.items())))

    def build(self) -> ConceptSpace:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)(self.config, **dict(self.kwargs))


class Encoder:
    """Embed the snippet rows of a batch; the model is built once per instance."""

    def __init__(self, spec: SpaceSpec | None = None, space: ConceptSpace | None = None):
        if space is None and spec is None:
            raise ValueError("an Encoder needs a SpaceSpec or a built space")
        self.space = space if space is not None else spec.build()
        if space is None:  # a worker's own model (a Ray actor): loaded now, not in its first batch
            self.space.prepare()
            one_blas_thread().acquire()  # for the worker's life: it only encodes (see the runners)

    def encode_rows(self, rows: list[dict]) -> list[dict]:
        """The rows, snippet rows with ``vector`` (float32 bytes) or ``error`` set."""
        out = [dict(r, frames=b"", vector=b"") for r in rows]
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            if r["kind"] == "snippet":
                groups.setdefault(r["shape"], []).append(i)
        for members in groups.values():
            try:
                self._embed(rows, out, members)
            except FILE_ERRORS as exc:
                log.warning("a batch failed to embed (%s): embedding its videos one by one", exc)
                by_video: dict[int, list[int]] = {}
                for i in members:
                    by_video.setdefault(int(rows[i]["video_id"]), []).append(i)
                for alone in by_video.values():
                    try:
                        self._embed(rows, out, alone)
                    except FILE_ERRORS as exc_alone:
                        for i in alone:
                            out[i]["error"] = error_message(rows[i]["path"], exc_alone)
        return out

    def _embed(self, rows: list[dict], out: list[dict], members: list[int]) -> None:
        frames = np.stack([frames_of(rows[i]) for i in members])
        vectors = np.asarray(self.space.encode_snippets(frames), dtype=np.float32)
        for i, v in zip(members, vectors):
            out[i]["vector"] = np.ascontiguousarray(v).tobytes()

    def __call__(self, batch: dict) -> dict:
        """Ray Data's ``map_batches`` entry: a batch of columns in, a batch of columns out."""
        names = list(batch)
        count = len(batch[names[0]]) if names else 0
        rows = [{k: _scalar(batch[k][i]) for k in names} for i in range(count)]
        out = self.encode_rows(rows)
        columns = list(out[0]) if out else names + ["vector"]
        return {k: np.array([r[k] for r in out], dtype=object if k in _OBJECT_COLUMNS else None)
                for k in columns}


_OBJECT_COLUMNS = {"frames", "thumb", "vector", "path", "kind", "frame_times", "shape", "error"}


def _scalar(value):
    """A numpy scalar from a Ray batch as the plain Python value the rows carry."""
    return value.item() if isinstance(value, np.generic) else value
