"""The embedded FAISS backend: a VectorIndex (storage.vectors) in one directory per space.

Each process holds its own copy in memory; the files on disk are shared. Every load and
save happens under an inter-process ``filelock`` on ``index.lock`` in the directory, so a
reader never sees an index file and a manifest from two different saves, and IndexStore can
re-read the saved ``seq`` before writing (a writer never overwrites a newer index).

Building is FAISS's own business, so it lives here too: ``rebuild`` trains on a sample, adds
every vector of the catalog, and tunes nprobe and the rerank depth on the collection itself.

``read_only_folder`` (a read-only archive): the folder is only read. No lock file is made
(nobody writes there; a save racing the load is caught by the manifest's checksums), no
temporary files are swept, a build keeps its vectors in memory, and saving is refused.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from storage.atomic import sweep_stale_temps
from storage.backends import VectorBackend, per_video_best
from storage.catalog import Catalog
from storage.gpu import gpu_count
from storage.ids import INDEX_BITS
from storage.index_choice import DEFAULT_K_FACTOR, choose_index
from storage.index_choice import outgrown as outgrown_reason
from storage.tuning import TARGET_RECALL, exact_neighbours, tune
from storage.vectors import MANIFEST_FILE, Manifest, VectorIndex, exists
from vidsonar.errors import CorruptIndexError, ReadOnlyArchiveError

log = logging.getLogger(__name__)

TUNE_QUERIES = 200
TUNE_K = 10
TRAIN_SAMPLE = 100_000
ADD_BATCH = 50_000
LOCK_FILE = "index.lock"


class FaissBackend(VectorBackend):
    name = "faiss"
    keeps_vectors = False  # float16 copies for the rerank only; the catalog stays the record
    shared = False

    def __init__(self, catalog: Catalog, space: str, dim: int, directory: Path,
                 memory_budget: int | None = None, read_only_folder: bool = False):
        self.catalog, self.space, self.dim = catalog, space, dim
        self.directory, self.memory_budget = Path(directory), memory_budget
        # not ``read_only``: that is the VectorIndex's (memory-mapped), seen through __getattr__
        self.read_only_folder = read_only_folder
        self.gpus = gpu_count()
        self.index: VectorIndex | None = None
        self._lock = None
        self._saved_checksum = ""  # the manifest this copy was loaded from or last saved as

    def __getattr__(self, name):
        # the VectorIndex's own attributes (read_only, full, ...) for code that inspects it
        index = self.__dict__.get("index")
        if index is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(index, name)

    # --- the inter-process lock ---------------------------------------------------------
    def lock(self):
        if self.read_only_folder:
            from contextlib import nullcontext
            return nullcontext()
        if self._lock is None:
            from filelock import FileLock
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.directory / LOCK_FILE))
        return self._lock

    # --- state --------------------------------------------------------------------------
    def open(self) -> None:
        """Load the saved index (flat ones memory-mapped), or create an empty one; first
        sweep what writers killed mid-save left (under the lock: no save of ours is running)."""
        with self.lock():
            if not self.read_only_folder:
                sweep_stale_temps(self.directory)
            if exists(self.directory):
                self.index = self._load(mmap=None)
                self._saved_checksum = self.index.manifest.checksum
            else:
                choice = choose_index(0, self.dim, self.memory_budget)
                self.index = VectorIndex.create(choice.factory, self.dim, self.space,
                                                choice.params, choice.k_factor)
                self._saved_checksum = ""
        self.index.gpu = self.gpus > 0

    def disk_changed(self) -> bool:
        """Has another process saved since this copy was loaded or saved?"""
        if not exists(self.directory):
            return False
        try:
            return Manifest.read(self.directory / MANIFEST_FILE).checksum != self._saved_checksum
        except CorruptIndexError:
            return True

    @property
    def manifest(self) -> Manifest:
        return self.index.manifest

    @manifest.setter
    def manifest(self, value: Manifest) -> None:
        self.index.manifest = value

    @property
    def count(self) -> int:
        return self.index.count

    @property
    def seq(self) -> int:
        return self.index.manifest.seq

    def set_seq(self, seq: int) -> None:
        self.index.manifest = replace(self.index.manifest, seq=int(seq))

    def saved_seq(self) -> int | None:
        if not exists(self.directory):
            return None
        try:
            return Manifest.read(self.directory / MANIFEST_FILE).seq
        except CorruptIndexError:
            return None

    def _writable(self) -> VectorIndex:
        """The index, reopened in memory if it was memory-mapped for searching."""
        if self.index.read_only:
            # A mapped copy has no changes of its own, so reloading loses nothing; if another
            # process saved meanwhile, this copy jumps to its (newer) seq, and replaying the
            # log on top stays correct since replay is idempotent.
            with self.lock():
                self.index = self._load(mmap=False)
                self._saved_checksum = self.index.manifest.checksum
            self.index.gpu = self.gpus > 0
        return self.index

    def _load(self, mmap: bool | None) -> VectorIndex:
        return VectorIndex.load(self.directory, space=self.space, dim=self.dim, mmap=mmap,
                                tidy=not self.read_only_folder)

    def add(self, ids, vectors, start=None, end=None, tags=None) -> None:
        if len(ids):
            self._writable().add(ids, vectors)

    def remove_videos(self, video_ids) -> int:
        video_ids = np.asarray(list(video_ids), np.int64)
        if not len(video_ids) or self.index.count == 0:
            return 0
        index = self._writable()
        labels = index._label_ids()
        hit = (labels >= 0) & np.isin(labels >> INDEX_BITS, video_ids)
        if not hit.any():
            return 0
        if index.full is not None:
            return index._remove_rows(np.flatnonzero(hit).astype(np.int64))
        return index.remove_ids(labels[hit])

    def search(self, queries, k, *, videos=None, k_factor=None, per_video=False):
        if per_video:  # FAISS has no grouping: search deeper, keep each video's best
            scores, ids = self.index.search(queries, min(k * 8, max(self.count, 1)),
                                            k_factor=k_factor, videos=videos)
            return per_video_best(scores, ids, k)
        return self.index.search(queries, k, k_factor=k_factor, videos=videos)

    def vectors(self, ids):
        return self.index.vectors(ids)

    def save(self, seq: int) -> None:
        """Save with ``seq``; the caller holds the lock and has checked nobody saved since."""
        if self.read_only_folder:
            raise ReadOnlyArchiveError(self.directory, "save the index", "opened read-only")
        self.set_seq(seq)
        self._writable()
        self.index.save(self.directory)
        self._saved_checksum = self.index.manifest.checksum

    def describe(self) -> dict:
        m = self.index.manifest
        return {"backend": "faiss", "uri": "faiss", "factory": m.factory, "params": m.params,
                "k_factor": m.k_factor, "count": self.count, "dim": m.dim, "seq": m.seq,
                "builds": m.builds, "path": str(self.directory)}

    # --- building -----------------------------------------------------------------------
    def outgrown(self) -> str | None:
        m = self.index.manifest
        return outgrown_reason(m.factory, self.index.count, m.built_count or m.count, self.dim,
                               self.memory_budget, gpu=self.gpus > 0)

    def build(self, factory: str | None = None, params: str | None = None,
              k_factor: int | None = None, builds: int = 0) -> VectorIndex:
        """A fresh index of every embedding of the space in the catalog, NOT yet installed:
        the current index keeps serving searches until the caller swaps and saves it."""
        started = time.perf_counter()
        count = self.catalog.embedding_count(self.space)
        choice = choose_index(count, self.dim, self.memory_budget, gpu=self.gpus > 0)
        index = VectorIndex.create(factory or choice.factory, self.dim, self.space,
                                   choice.params if params is None else params,
                                   self._k_factor(factory, choice, k_factor),
                                   directory=None if self.read_only_folder else self.directory)
        if not index.is_trained:
            sample = self._training_sample(count, min(choice.train_size or TRAIN_SAMPLE, TRAIN_SAMPLE))
            log.info("training %s on %d of %d vectors", index.manifest.factory, len(sample), count)
            index.train(sample)
        tuning = params is None and k_factor is None and "IVF" in index.manifest.factory
        rng, keep = np.random.default_rng(1), min(1.0, 2 * TUNE_QUERIES / max(count, 1))
        added, picked = 0, []
        for ids, vectors in self.catalog.embeddings(self.space, batch=ADD_BATCH):
            index.add(ids, vectors)
            if tuning:  # the tuning queries are sampled here, saving a pass over the catalog
                chosen = rng.random(len(ids)) < keep
                picked.append((ids[chosen], vectors[chosen]))
            added += len(ids)
            log.info("added %d / %d vectors (%.0f s)", added, count, time.perf_counter() - started)
        index.manifest = replace(index.manifest, built_count=count, builds=builds)
        if tuning and picked:
            self._tune(index, np.concatenate([p[0] for p in picked])[:TUNE_QUERIES],
                       np.concatenate([p[1] for p in picked])[:TUNE_QUERIES])
        index.gpu = self.gpus > 0
        log.info("built %s index of %d vectors in %.1f s", index.manifest.factory, count,
                 time.perf_counter() - started)
        return index

    def install(self, index: VectorIndex) -> None:
        self.index = index

    @staticmethod
    def _k_factor(factory: str | None, choice, k_factor: int | None) -> int:
        """The rerank depth: as given, else the choice's, else the default for a PQ factory
        named by hand (PQ codes alone lose most of the recall)."""
        if k_factor is not None:
            return k_factor
        if factory is None or factory == choice.factory:
            return choice.k_factor
        return DEFAULT_K_FACTOR if "PQ" in factory else 0

    def _tune(self, index: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Set nprobe and the default rerank depth from recall measured on a sample of the
        collection itself (see storage.tuning)."""
        if not len(ids):
            return
        truth = exact_neighbours(vectors, self.catalog.embeddings(self.space), TUNE_K + 1)
        nlist = int(index.manifest.factory.split("IVF")[1].split(",")[0].split("_")[0])
        (k_factor, nprobe), table = tune(index, vectors, ids, truth, nlist, TUNE_K)
        log.info("rerank x%d, nprobe=%d chosen (target recall@%d >= %.2f, %d sampled queries): %s",
                 k_factor, nprobe, TUNE_K, TARGET_RECALL, len(ids), table)

    def _training_sample(self, count: int, size: int) -> np.ndarray:
        rng = np.random.default_rng(0)
        keep = size / max(count, 1)
        parts = [v[rng.random(len(v)) < keep] if keep < 1 else v
                 for _, v in self.catalog.embeddings(self.space)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
