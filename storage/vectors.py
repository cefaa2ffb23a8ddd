"""FAISS vector indices built from factory strings, saved atomically with a manifest.

A directory holds ``index.faiss``, ``manifest.json`` and, for an index with an exact rerank,
the full vectors (``vectors-<gen>.f16``, ``ids-<gen>.i64``, see storage.full_vectors)::

    {"factory": "IVF4096,PQ48np", "params": "nprobe=64", "k_factor": 20, "space": "lite",
     "dim": 384, "count": 1000000, "rows": 1000000, "seq": 5120, "builds": 1,
     "faiss_version": "1.15.1", "checksum": "<sha256 of index.faiss>",
     "ids_checksum": "<sha256>", ...}

Vectors are unit-norm, so inner product is cosine similarity. With full vectors the FAISS
index is a candidate generator whose labels are row numbers of the full vectors; ``search``
reranks ``k * k_factor`` candidates exactly and returns snippet ids with exact scores. The
manifest's ``k_factor`` is the depth tuning chose at build time, the default of a search;
a caller may pass another per search. ``seq`` is the last change-log entry (storage.changes)
the saved index reflects; ``builds`` counts full rebuilds of this directory.

Filters are pushed into FAISS: ``search(..., videos=...)`` builds an ``IDSelectorBitmap`` over
the index's labels (rows, or positions of an ``IDMap2``) whose video is allowed, passed in
``SearchParameters``; few allowed rows are scored exactly from the full vectors instead.
Loading with ``mmap=True`` maps the index file instead of reading it (fast to open, shared
page cache) but gives a read-only index: FAISS aborts the process on writes to mapped lists,
so this class refuses them first.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from storage.atomic import atomic_write, atomic_write_text, sha256_file
from storage.full_vectors import FullVectors
from vidsonar.errors import CorruptIndexError, IndexError_, SpaceMismatchError

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
RERANK_CHUNK = 64  # queries reranked at a time: bounds the gathered (chunk, k*k_factor, d) block
#: a filter allowing at most this many rows of an approximate index is scored exactly instead
EXACT_SCAN_MAX = 20_000


def _faiss():
    import faiss
    return faiss


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


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
    trained_count: int = 0  # size of the training sample
    built_count: int = 0  # collection size the index was trained for (see index_choice.outgrown)
    k_factor: int = 0  # exact rerank of k * k_factor candidates; 0: no rerank, labels are ids
    rows: int = 0  # full-vector rows, removed ones included
    generation: str = ""
    ids_checksum: str = ""
    seq: int = 0  # last change-log entry reflected (storage.changes)
    builds: int = 0  # full rebuilds of this directory so far
    updated_at: str = field(default_factory=_now)

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise CorruptIndexError(f"cannot read index manifest {path}: {exc}; "
                                    "rebuild it with `vidsonar reindex`") from exc


class VectorIndex:
    """A FAISS index plus its manifest (and full vectors when it reranks). Ids are snippet ids."""

    def __init__(self, index, manifest: Manifest, full: FullVectors | None = None,
                 read_only: bool = False):
        self.index, self.manifest, self.full, self.read_only = index, manifest, full, read_only
        self.gpu = False  # IndexStore turns this on when FAISS sees GPUs
        self._placed = None
        self._labels = None  # snippet id of each label position (cached; see _label_ids)
        if manifest.params:
            self.set_params(manifest.params)

    @classmethod
    def create(cls, factory: str, dim: int, space: str, params: str = "", k_factor: int = 0,
               directory: Path | None = None) -> "VectorIndex":
        """An empty index; with ``directory`` the full vectors go to disk as they are added."""
        faiss = _faiss()
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        full = None
        if k_factor > 0:
            full = FullVectors(dim)
            if directory is not None:
                full.attach(Path(directory), _new_generation())
        return cls(index, Manifest(factory=factory, space=space, dim=dim, params=params,
                                   k_factor=k_factor, faiss_version=faiss.__version__), full)

    @classmethod
    def load(cls, directory: Path, space: str | None = None, dim: int | None = None,
             mmap: bool | None = False, tidy: bool = True) -> "VectorIndex":
        """Load and check an index; a manifest that does not match is a clear error.

        ``mmap=None`` maps the file where that costs no search speed: flat codes yes, IVF lists
        no (FAISS's mapped lists searched 3x slower here, and at 80 bytes a vector they are
        small). The full vectors for the rerank are always mapped. ``tidy=False`` leaves the
        files as found (a read-only folder), rows a crashed writer appended included.
        """
        directory = Path(directory)
        manifest = Manifest.read(directory / MANIFEST_FILE)
        if mmap is None:
            mmap = "IVF" not in manifest.factory
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
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path), _mmap_flag(manifest.factory) if mmap else 0)
        except RuntimeError as exc:
            raise CorruptIndexError(f"FAISS cannot read {path}: {exc}; rebuild it with "
                                    "`vidsonar reindex`") from exc
        if index.d != manifest.dim or index.ntotal != manifest.count:
            raise CorruptIndexError(f"index file {path} holds {index.ntotal} x {index.d}-d vectors, "
                                    f"manifest says {manifest.count} x {manifest.dim}")
        full = None
        if manifest.k_factor > 0:
            full = FullVectors(manifest.dim, directory, manifest.generation, manifest.rows,
                               read_only=mmap, tidy=tidy)
            if sha256_file(full.ids_path) != manifest.ids_checksum:
                raise CorruptIndexError(f"{full.ids_path} does not match its manifest checksum; "
                                        "rebuild it with `vidsonar reindex`")
            if int((full.ids >= 0).sum()) != manifest.count:
                raise CorruptIndexError(f"{full.ids_path} lists {int((full.ids >= 0).sum())} live "
                                        f"vectors, the index holds {manifest.count}")
        return cls(index, manifest, full, read_only=mmap)

    # --- building -----------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def train(self, vectors: np.ndarray) -> None:
        vectors = self._check(vectors)
        self._writable()
        self.index.train(vectors)
        self.manifest = replace(self.manifest, trained_count=len(vectors))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = self._check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        self._writable()
        if not self.is_trained:
            raise RuntimeError(f"index {self.manifest.factory!r} must be trained before adding")
        labels = ids if self.full is None else self.full.append(ids, vectors)
        self.index.add_with_ids(vectors, labels)
        self._placed = self._labels = None

    def remove_range(self, lo: int, hi: int) -> int:
        """Remove every id in [lo, hi); return how many were removed."""
        self._writable()
        self._placed = self._labels = None
        if self.full is None:
            return int(self.index.remove_ids(_faiss().IDSelectorRange(lo, hi)))
        return self._remove_rows(self.full.rows_in_range(lo, hi))

    def remove_ids(self, ids: np.ndarray) -> int:
        self._writable()
        self._placed = self._labels = None
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.full is None:
            return int(self.index.remove_ids(ids))
        return self._remove_rows(np.flatnonzero(np.isin(self.full.ids, ids)).astype(np.int64))

    def _remove_rows(self, rows: np.ndarray) -> int:
        if not len(rows):
            return 0
        removed = int(self.index.remove_ids(_faiss().IDSelectorBatch(rows)))
        self.full.forget(rows)
        return removed

    def set_params(self, params: str) -> None:
        if params:
            _faiss().ParameterSpace().set_index_parameters(self.index, params)
        self.manifest = replace(self.manifest, params=params)
        self._placed = None

    def set_default_k_factor(self, k_factor: int) -> None:
        """The rerank depth searches use when they pass none (chosen by tuning at build time)."""
        self.manifest = replace(self.manifest, k_factor=int(k_factor))

    def _writable(self) -> None:
        if self.read_only:
            raise IndexError_(f"the {self.manifest.factory} index was opened memory-mapped, "
                              "read-only; load it without mmap to change it")

    # --- searching ----------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, rerank: bool = True, *,
               k_factor: int | None = None,
               videos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (nq, k); missing results have id -1.

        With full vectors and ``rerank``, the scores are exact inner products of the best
        ``k`` among ``k * k_factor`` candidates (``k_factor`` defaults to the manifest's);
        otherwise they are the index's own scores. ``videos``: only snippets of these video
        ids may be returned (pushed into FAISS as an ``IDSelector``).
        """
        queries = self._check(np.atleast_2d(queries))
        k = max(1, min(k, max(self.count, 1)))
        k_factor = self.manifest.k_factor if k_factor is None else k_factor
        if videos is not None:
            return self._search_filtered(queries, k, k_factor if rerank else 0,
                                         np.asarray(videos, np.int64))
        if self.full is None:
            return self._searcher().search(queries, k)
        wide = min(k * max(k_factor, 1), self.count) if rerank else k
        scores, rows = self._searcher().search(queries, max(wide, k))
        if rerank:
            scores, rows = exact_rerank(self.full, queries, rows, k)
        ids = np.where(rows >= 0, self.full.ids[np.maximum(rows, 0)], -1)
        return scores, ids

    def _search_filtered(self, queries: np.ndarray, k: int, k_factor: int,
                         videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from storage.ids import INDEX_BITS
        faiss = _faiss()
        labels = self._label_ids()
        allowed = (labels >= 0) & np.isin(labels >> INDEX_BITS, videos)
        n_allowed = int(allowed.sum())
        nq = len(queries)
        if n_allowed == 0:
            return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
        if self.full is not None and n_allowed <= EXACT_SCAN_MAX:
            # few rows: exact scores over exactly those (an IVF probe could miss them all)
            rows = np.broadcast_to(np.flatnonzero(allowed), (nq, n_allowed))
            scores, rows = exact_rerank(self.full, queries, np.ascontiguousarray(rows), k)
            return scores, np.where(rows >= 0, self.full.ids[np.maximum(rows, 0)], -1)
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        wide = min(k * max(k_factor, 1), n_allowed) if self.full is not None else k
        if self.full is None:  # an IDMap2: select positions in the inner index, map them to ids
            inner = faiss.downcast_index(self.index.index)
            scores, pos = inner.search(queries, k, params=faiss.SearchParameters(sel=selector))
            return scores, np.where(pos >= 0, labels[np.maximum(pos, 0)], -1)
        scores, rows = self.index.search(queries, max(wide, k), params=self._params(selector))
        del bitmap  # kept alive until FAISS is done with the selector
        if k_factor > 0:
            scores, rows = exact_rerank(self.full, queries, rows, k)
        else:
            scores, rows = scores[:, :k], rows[:, :k]
        return scores, np.where(rows >= 0, self.full.ids[np.maximum(rows, 0)], -1)

    def _params(self, selector):
        """SearchParameters carrying ``selector`` and the index's own nprobe / efSearch (a
        parameters object replaces them, it does not inherit them)."""
        faiss = _faiss()
        try:
            ivf = faiss.extract_index_ivf(self.index)
        except RuntimeError:
            ivf = None
        if ivf is not None:
            return faiss.SearchParametersIVF(sel=selector, nprobe=int(ivf.nprobe))
        inner = faiss.downcast_index(self.index.index if hasattr(self.index, "index") else self.index)
        if hasattr(inner, "hnsw"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=int(inner.hnsw.efSearch))
        return faiss.SearchParameters(sel=selector)

    def _label_ids(self) -> np.ndarray:
        """The snippet id behind each label FAISS returns (-1: removed)."""
        if self.full is not None:
            return self.full.ids
        if self._labels is None:
            self._labels = _faiss().vector_to_array(self.index.id_map).astype(np.int64)
        return self._labels

    def vectors(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, float32 vectors) of the given snippet ids, in the order given."""
        ids = np.asarray(ids, np.int64).ravel()
        labels = self._label_ids()
        order = np.argsort(labels, kind="stable")
        pos = np.searchsorted(labels[order], ids)
        pos = np.minimum(pos, max(len(order) - 1, 0))
        found = (len(order) > 0) & (labels[order][pos] == ids) & (ids >= 0) if len(order) else \
            np.zeros(len(ids), bool)
        rows = order[pos[found]]
        if self.full is not None:
            return ids[found], self.full.get(rows)
        inner = _faiss().downcast_index(self.index.index)
        out = np.stack([inner.reconstruct(int(r)) for r in rows]) if len(rows) else \
            np.zeros((0, self.manifest.dim), np.float32)
        return ids[found], out

    def _searcher(self):
        if self.gpu and self._placed is None:
            from storage.gpu import place
            self._placed, _ = place(self.index, self.manifest.factory, self.manifest.dim,
                                    params=self.manifest.params)
        return self._placed if self.gpu and self._placed is not None else self.index

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> Manifest:
        """Write full vectors, index, then manifest; the manifest's checksums seal the set."""
        self._writable()
        faiss, directory = _faiss(), Path(directory)
        extra = {}
        if self.full is not None:
            if self.full.directory != directory:
                self.full.attach(directory, _new_generation())
            self.full.save()
            extra = {"rows": self.full.rows, "generation": self.full.generation,
                     "ids_checksum": sha256_file(self.full.ids_path)}
        path = directory / INDEX_FILE
        atomic_write(path, lambda tmp: write_index(self.index, tmp))
        self.manifest = replace(self.manifest, count=self.count, checksum=sha256_file(path),
                                faiss_version=faiss.__version__, updated_at=_now(), **extra)
        atomic_write_text(directory / MANIFEST_FILE, json.dumps(asdict(self.manifest), indent=2))
        _remove_stale_generations(directory, self.manifest.generation)
        return self.manifest

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest.dim:
            raise ValueError(f"expected (n, {self.manifest.dim}) vectors, got {vectors.shape}")
        return vectors


def write_index(index, path: str) -> None:
    """``faiss.write_index`` through a Python file, so a failed write raises. FAISS's own file
    writer only prints a failed close ("No space left on device") and returns, and the empty
    file then replaced a good index (same bytes either way; 0.36 s against 0.24 s for 800 MB)."""
    faiss = _faiss()
    with open(path, "wb") as f:
        writer = faiss.PyCallbackIOWriter(f.write)
        try:
            faiss.write_index(index, writer)
        finally:
            del writer


def exact_rerank(full: FullVectors, queries: np.ndarray, rows: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of the candidate ``rows`` by exact inner product with the full vectors."""
    nq = len(queries)
    scores = np.full((nq, k), -np.inf, np.float32)
    best = np.full((nq, k), -1, np.int64)
    for start in range(0, nq, RERANK_CHUNK):
        q, r = queries[start:start + RERANK_CHUNK], rows[start:start + RERANK_CHUNK]
        exact = np.matmul(full.get(r), q[:, :, None])[..., 0]
        exact[r < 0] = -np.inf
        take = min(k, r.shape[1])
        top = np.argpartition(-exact, take - 1, axis=1)[:, :take] if take < r.shape[1] \
            else np.broadcast_to(np.arange(take), (len(r), take))
        top_scores = np.take_along_axis(exact, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        scores[start:start + len(q), :take] = np.take_along_axis(exact, top, axis=1)
        chosen = np.take_along_axis(r, top, axis=1)
        best[start:start + len(q), :take] = np.where(np.isfinite(scores[start:start + len(q), :take]),
                                                     chosen, -1)
    return scores, best


def _mmap_flag(factory: str) -> int:
    """FAISS maps IVF lists with IO_FLAG_MMAP and flat codes with IO_FLAG_MMAP_IFC, not both."""
    faiss = _faiss()
    return faiss.IO_FLAG_MMAP if "IVF" in factory else faiss.IO_FLAG_MMAP_IFC


def _new_generation() -> str:
    return f"{time.time_ns():x}"


def _remove_stale_generations(directory: Path, keep: str) -> None:
    for path in [*directory.glob("vectors-*.f16"), *directory.glob("ids-*.i64")]:
        if path.stem.split("-", 1)[1] != keep:
            path.unlink(missing_ok=True)


def exists(directory: Path) -> bool:
    return (Path(directory) / MANIFEST_FILE).exists()
