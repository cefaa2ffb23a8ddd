"""Keeps a concept space's FAISS index in step with the catalog.

The catalog's ``embeddings`` table is the source of truth. The index on disk is a derived
copy: when it is missing, damaged, or holds a different number of vectors than the catalog
(say a crash came between a catalog commit and the index save), it is rebuilt from the
catalog, with the index type ``choose_index`` picks for the collection's size.

Searching opens a flat index memory-mapped (read-only, quick to open; the first change
reopens it in memory) and an IVF-PQ index in memory, with its full vectors mapped. An IVF-PQ index keeps taking vectors after training; once the collection is
``OUTGROW_FACTOR`` times the size it was trained for, ``outgrown()`` says so and ingestion
rebuilds it (``vidsonar reindex`` does the same by hand).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from storage.catalog import Catalog
from storage.gpu import gpu_count
from storage.ids import video_id_range
from storage.index_choice import DEFAULT_K_FACTOR, choose_index
from storage.index_choice import outgrown as outgrown_reason
from storage.tuning import TARGET_RECALL, exact_neighbours, tune
from storage.vectors import VectorIndex, exists
from vidsonar.errors import CorruptIndexError, IndexError_

log = logging.getLogger(__name__)

TUNE_QUERIES = 200
TUNE_K = 10
TRAIN_SAMPLE = 100_000
ADD_BATCH = 50_000


class IndexStore:
    """The index of one concept space in one directory."""

    def __init__(self, catalog: Catalog, space: str, dim: int, directory: Path,
                 memory_budget: int | None = None):
        self.catalog, self.space, self.dim, self.directory = catalog, space, dim, Path(directory)
        self.memory_budget = memory_budget
        self.gpus = gpu_count()
        self._index: VectorIndex | None = None
        self.dirty = False

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._load_or_rebuild()
            self._index.gpu = self.gpus > 0
        return self._index

    def _writable(self) -> VectorIndex:
        """The index, reopened in memory if it was memory-mapped for searching."""
        if self.index.read_only:
            self._index = VectorIndex.load(self.directory, space=self.space, dim=self.dim)
            self._index.gpu = self.gpus > 0
        return self._index

    def _load_or_rebuild(self) -> VectorIndex:
        expected = self.catalog.embedding_count(self.space)
        if exists(self.directory):
            try:
                index = VectorIndex.load(self.directory, space=self.space, dim=self.dim, mmap=None)
                if index.count == expected:
                    return index
                log.warning("index %s holds %d vectors, catalog %d: rebuilding",
                            self.directory, index.count, expected)
            except CorruptIndexError as exc:
                log.warning("%s: rebuilding from the catalog", exc)
        elif expected == 0:
            choice = choose_index(0, self.dim, self.memory_budget)
            return VectorIndex.create(choice.factory, self.dim, self.space, choice.params,
                                      choice.k_factor)
        return self.rebuild()

    def rebuild(self, factory: str | None = None, params: str | None = None,
                k_factor: int | None = None) -> VectorIndex:
        """Build a fresh index from every embedding of the space in the catalog.

        Trains on a sample of at most ``TRAIN_SAMPLE`` vectors, then adds every vector in
        batches, logging progress; the old index stays valid on disk until the new manifest
        replaces it.
        """
        started = time.perf_counter()
        count = self.catalog.embedding_count(self.space)
        choice = choose_index(count, self.dim, self.memory_budget, gpu=self.gpus > 0)
        index = VectorIndex.create(factory or choice.factory, self.dim, self.space,
                                   choice.params if params is None else params,
                                   self._k_factor(factory, choice, k_factor),
                                   directory=self.directory)
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
        index.manifest = replace(index.manifest, built_count=count)
        if tuning and picked:
            self._tune(index, np.concatenate([p[0] for p in picked])[:TUNE_QUERIES],
                       np.concatenate([p[1] for p in picked])[:TUNE_QUERIES])
        index.save(self.directory)
        index.gpu = self.gpus > 0
        self._index, self.dirty = index, False
        log.info("built %s index of %d vectors in %.1f s", index.manifest.factory, count,
                 time.perf_counter() - started)
        return index

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
        """Set nprobe and the rerank depth from recall measured on a sample of the collection
        itself (see storage.tuning)."""
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

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._writable().add(ids, vectors)
            self.dirty = True

    def remove_video(self, video_id: int) -> int:
        removed = self._writable().remove_range(*video_id_range(video_id))
        self.dirty = self.dirty or removed > 0
        return removed

    def delete_video(self, video_id: int, thumbs: Path | None = None) -> tuple[int, bool]:
        """Remove a video's vectors, then its catalog rows; return (vectors removed, row deleted).

        The index is saved without the vectors *before* the catalog rows go, so no crash can
        leave the index returning snippets the catalog no longer has. A crash in between
        leaves the catalog one video ahead of the index; the count check on the next load
        rebuilds the index, and deleting again finishes the job.
        """
        removed = self.remove_video(video_id)
        self.save()
        deleted = self.catalog.delete_video(video_id)
        if thumbs is not None:
            shutil.rmtree(Path(thumbs) / str(video_id), ignore_errors=True)
        return removed, deleted

    def save(self) -> None:
        if self.dirty and self._index is not None:
            self._index.save(self.directory)
            self.dirty = False

    def outgrown(self) -> bool:
        """True when the collection has outgrown the index it was built as (see index_choice)."""
        manifest = self.index.manifest
        reason = outgrown_reason(manifest.factory, self.index.count,
                                 manifest.built_count or manifest.count, self.dim,
                                 self.memory_budget, gpu=self.gpus > 0)
        if reason:
            log.info("index outgrown: %s", reason)
        return reason is not None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids): exact inner products, reranked where the index is approximate."""
        if self.index.count == 0:
            raise IndexError_(f"the {self.space!r} index is empty: ingest some videos first")
        return self.index.search(queries, k)
