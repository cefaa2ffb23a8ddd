"""FAISS vector indices built from factory strings, saved atomically with a manifest.

A directory holds ``index.faiss`` and ``manifest.json``::

    {"factory": "IDMap2,Flat", "params": "", "space": "lite", "dim": 384, "count": 42,
     "metric": "inner_product", "faiss_version": "1.13.0", "checksum": "<sha256>", ...}

Vectors are unit-norm, so inner product is cosine similarity.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from storage.atomic import atomic_write, atomic_write_text, sha256_file
from vidsonar.errors import CorruptIndexError, SpaceMismatchError

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"


def _faiss():
    import faiss
    return faiss


@dataclass(frozen=True)
class Manifest:
    factory: str
    space: str
    dim: int
    params: str = ""
    count: int = 0
    metric: str = "inner_product"
    faiss_version: str = ""
    checksum: str = ""
    trained_count: int = 0
    updated_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise CorruptIndexError(f"cannot read index manifest {path}: {exc}; "
                                    "rebuild it with `vidsonar reindex`") from exc


class VectorIndex:
    """A FAISS index plus its manifest. Ids are the catalog's int64 snippet ids."""

    def __init__(self, index, manifest: Manifest):
        self.index = index
        self.manifest = manifest
        if manifest.params:
            self.set_params(manifest.params)

    @classmethod
    def create(cls, factory: str, dim: int, space: str, params: str = "") -> "VectorIndex":
        faiss = _faiss()
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        return cls(index, Manifest(factory=factory, space=space, dim=dim, params=params,
                                   faiss_version=faiss.__version__))

    @classmethod
    def load(cls, directory: Path, space: str | None = None, dim: int | None = None) -> "VectorIndex":
        """Load and check an index; a manifest that does not match is a clear error."""
        manifest = Manifest.read(directory / MANIFEST_FILE)
        if space is not None and manifest.space != space:
            raise SpaceMismatchError(
                f"index at {directory} was built with concept space {manifest.space!r}, "
                f"not {space!r}: search it with {manifest.space!r} or re-ingest")
        if dim is not None and manifest.dim != dim:
            raise SpaceMismatchError(f"index at {directory} holds {manifest.dim}-d vectors, "
                                     f"the encoder makes {dim}-d vectors")
        path = directory / INDEX_FILE
        if not path.exists() or sha256_file(path) != manifest.checksum:
            raise CorruptIndexError(f"index file {path} is missing or does not match its manifest "
                                    "checksum; rebuild it with `vidsonar reindex`")
        index = _faiss().read_index(str(path))
        if index.d != manifest.dim or index.ntotal != manifest.count:
            raise CorruptIndexError(f"index file {path} holds {index.ntotal} x {index.d}-d vectors, "
                                    f"manifest says {manifest.count} x {manifest.dim}")
        return cls(index, manifest)

    # --- building -----------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def train(self, vectors: np.ndarray) -> None:
        vectors = self._check(vectors)
        self.index.train(vectors)
        self.manifest = replace(self.manifest, trained_count=len(vectors))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = self._check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not self.is_trained:
            raise RuntimeError(f"index {self.manifest.factory!r} must be trained before adding")
        self.index.add_with_ids(vectors, ids)

    def remove_range(self, lo: int, hi: int) -> int:
        """Remove every id in [lo, hi); return how many were removed."""
        return int(self.index.remove_ids(_faiss().IDSelectorRange(lo, hi)))

    def remove_ids(self, ids: np.ndarray) -> int:
        return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def set_params(self, params: str) -> None:
        if params:
            _faiss().ParameterSpace().set_index_parameters(self.index, params)
        self.manifest = replace(self.manifest, params=params)

    # --- searching ----------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (nq, k); missing results have id -1."""
        queries = self._check(np.atleast_2d(queries))
        k = max(1, min(k, max(self.count, 1)))
        return self.index.search(queries, k)

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> Manifest:
        """Write index then manifest, each atomically; the manifest's checksum seals the pair."""
        faiss = _faiss()
        path = directory / INDEX_FILE
        atomic_write(path, lambda tmp: faiss.write_index(self.index, tmp))
        self.manifest = replace(self.manifest, count=self.count, checksum=sha256_file(path),
                                faiss_version=faiss.__version__,
                                updated_at=dt.datetime.now(dt.timezone.utc).isoformat())
        atomic_write_text(directory / MANIFEST_FILE, json.dumps(asdict(self.manifest), indent=2))
        return self.manifest

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest.dim:
            raise ValueError(f"expected (n, {self.manifest.dim}) vectors, got {vectors.shape}")
        return vectors


def exists(directory: Path) -> bool:
    return (directory / MANIFEST_FILE).exists()
