"""Keeps a concept space's FAISS index in step with the catalog.

The catalog's ``embeddings`` table is the source of truth. The index on disk is a derived
copy: when it is missing, damaged, or holds a different number of vectors than the catalog
(say a crash came between a catalog commit and the index save), it is rebuilt from the
catalog, with the index type ``choose_index`` picks for the collection's size.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from storage.catalog import Catalog
from storage.ids import video_id_range
from storage.index_choice import choose_index
from storage.vectors import VectorIndex, exists
from vidsonar.errors import CorruptIndexError, IndexError_

log = logging.getLogger(__name__)

TRAIN_SAMPLE = 100_000


class IndexStore:
    """The index of one concept space in one directory."""

    def __init__(self, catalog: Catalog, space: str, dim: int, directory: Path,
                 memory_budget: int | None = None):
        self.catalog, self.space, self.dim, self.directory = catalog, space, dim, Path(directory)
        self.memory_budget = memory_budget
        self._index: VectorIndex | None = None
        self.dirty = False

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._load_or_rebuild()
        return self._index

    def _load_or_rebuild(self) -> VectorIndex:
        expected = self.catalog.embedding_count(self.space)
        if exists(self.directory):
            try:
                index = VectorIndex.load(self.directory, space=self.space, dim=self.dim)
                if index.count == expected:
                    return index
                log.warning("index %s holds %d vectors, catalog %d: rebuilding",
                            self.directory, index.count, expected)
            except CorruptIndexError as exc:
                log.warning("%s: rebuilding from the catalog", exc)
        elif expected == 0:
            choice = choose_index(0, self.dim, self.memory_budget)
            return VectorIndex.create(choice.factory, self.dim, self.space, choice.params)
        return self.rebuild()

    def rebuild(self, factory: str | None = None, params: str | None = None) -> VectorIndex:
        """Build a fresh index from every embedding of the space in the catalog."""
        started = time.perf_counter()
        count = self.catalog.embedding_count(self.space)
        choice = choose_index(count, self.dim, self.memory_budget)
        index = VectorIndex.create(factory or choice.factory, self.dim, self.space,
                                   choice.params if params is None else params)
        if not index.is_trained:
            index.train(self._training_sample(count))
        for ids, vectors in self.catalog.embeddings(self.space):
            index.add(ids, vectors)
        index.save(self.directory)
        self._index, self.dirty = index, False
        log.info("built %s index of %d vectors in %.1f s", index.manifest.factory, count,
                 time.perf_counter() - started)
        return index

    def _training_sample(self, count: int) -> np.ndarray:
        rng = np.random.default_rng(0)
        keep = TRAIN_SAMPLE / max(count, 1)
        parts = [v[rng.random(len(v)) < keep] if keep < 1 else v
                 for _, v in self.catalog.embeddings(self.space)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add(ids, vectors)
            self.dirty = True

    def remove_video(self, video_id: int) -> int:
        removed = self.index.remove_range(*video_id_range(video_id))
        self.dirty = self.dirty or removed > 0
        return removed

    def save(self) -> None:
        if self.dirty and self._index is not None:
            self._index.save(self.directory)
            self.dirty = False

    def outgrown(self) -> bool:
        """True when the collection has outgrown the index type it was built as."""
        wanted = choose_index(self.index.count, self.dim, self.memory_budget).factory
        return wanted != self.index.manifest.factory

    def search(self, queries: np.ndarray, k: int):
        if self.index.count == 0:
            raise IndexError_(f"the {self.space!r} index is empty: ingest some videos first")
        return self.index.search(queries, k)
