"""Vector backends behind one interface, chosen by a URL parsed in one place.

``VIDSONAR_INDEX`` (or the CLI's ``--index``) names the backend, like a database URL:

- ``faiss`` (the default): an embedded FAISS index in the archive's ``index/<space>/``
  directory (storage.backends.faiss_backend);
- ``milvus:<uri>``: a Milvus collection through pymilvus's ``MilvusClient``, where ``<uri>``
  is what ``MilvusClient`` takes: a local path (``milvus:~/.vidsonar/milvus.db``) is Milvus Lite,
  embedded in this process; ``http://host:19530`` a Milvus standalone or distributed server,
  with the token from ``VIDSONAR_MILVUS_TOKEN`` (storage.backends.milvus_backend).

``VectorBackend`` is the contract both implement and tests/test_backends.py checks. The
change log and following other processes live one layer up, in storage.index_store.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from vidsonar.errors import InputError

DEFAULT_INDEX = "faiss"


@dataclass(frozen=True)
class IndexURL:
    """Which backend, and where: ``faiss`` or ``milvus:<uri>``."""
    backend: str
    uri: str = ""
    token: str | None = None

    @property
    def lite(self) -> bool:
        """A Milvus URI that is a local path: Milvus Lite, embedded in this process."""
        return self.backend == "milvus" and not re.match(r"^[a-z][a-z0-9+.-]*://", self.uri)

    def redacted(self) -> str:
        """The URL for logs and ``vidsonar info``: never the token, nor a password in the URI."""
        if self.backend == "faiss":
            return "faiss"
        return "milvus:" + re.sub(r"//[^/@]*@", "//***@", self.uri)

    def describe(self) -> dict:
        return {"backend": self.backend, "uri": self.redacted(),
                "token": "***" if self.token else None}


def parse_index_url(text: str | None = None, token: str | None = None) -> IndexURL:
    """``text`` (else ``$VIDSONAR_INDEX``, else ``faiss``) as an IndexURL; a bad one is an
    InputError that quotes it and shows the forms accepted."""
    raw = (text if text is not None else os.environ.get("VIDSONAR_INDEX")) or DEFAULT_INDEX
    raw = raw.strip()
    if raw == "faiss":
        return IndexURL("faiss")
    if raw.startswith("milvus:"):
        uri = raw[len("milvus:"):]
        if not uri:
            raise InputError(f"index URL {raw!r} names no Milvus URI: use milvus:PATH.db for "
                             "Milvus Lite or milvus:http://HOST:19530 for a Milvus server")
        if not re.match(r"^[a-z][a-z0-9+.-]*://", uri):
            uri = os.path.abspath(os.path.expanduser(uri))
        return IndexURL("milvus", uri, token or os.environ.get("VIDSONAR_MILVUS_TOKEN") or None)
    raise InputError(f"unknown index URL {raw!r}: use 'faiss' (the default) or 'milvus:<uri>' "
                     "(a local path for Milvus Lite, http://HOST:19530 for a server)")


class VectorBackend(ABC):
    """Snippet vectors of one concept space, searchable with filters pushed down.

    Ids are packed snippet ids (storage.ids): a video's vectors are one id range.
    ``seq`` is the last change-log entry the backend reflects (storage.changes).
    """

    name: str = ""
    keeps_vectors: bool = False  # holds full-precision vectors: the catalog's copy is optional
    shared: bool = False  # one copy every process writes to (a server), not a per-process one

    @abstractmethod
    def open(self) -> None:
        """Load (or create empty) the saved state; CorruptIndexError when unreadable."""

    @property
    @abstractmethod
    def count(self) -> int: ...

    @property
    @abstractmethod
    def seq(self) -> int: ...

    @abstractmethod
    def set_seq(self, seq: int) -> None:
        """Record (in memory) that the state now reflects the log up to ``seq``."""

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray, start: np.ndarray | None = None,
            end: np.ndarray | None = None, tags: dict[int, list[str]] | None = None) -> None:
        """Add (or replace) snippets; ``start``/``end``/``tags`` feed backends that filter on them."""

    @abstractmethod
    def remove_videos(self, video_ids) -> int:
        """Remove every snippet of these videos; how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, *, videos: np.ndarray | None = None,
               k_factor: int | None = None, per_video: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (nq, k), best first, -1 ids past the end. ``videos``: only these
        videos' snippets; ``per_video``: at most one hit per video; ``k_factor``: rerank depth
        of an approximate index (ignored where there is none)."""

    @abstractmethod
    def vectors(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, float32 vectors) for these snippet ids, in the order given."""

    @abstractmethod
    def save(self, seq: int) -> None:
        """Make the current state durable, recording that it reflects the log up to ``seq``."""

    @abstractmethod
    def saved_seq(self) -> int | None:
        """The seq of the durable state as it is now (another process may have moved it)."""

    @abstractmethod
    def describe(self) -> dict: ...

    def close(self) -> None:
        """Release connections and files."""

    def ping(self) -> None:
        """Raise IndexUnreachableError while the engine's server cannot be reached (nothing
        to do for an embedded one)."""

    def disk_changed(self) -> bool:
        """Has another process saved since this copy was loaded or saved? (False where all
        processes share one copy.)"""
        return False

    def lock(self):
        """An inter-process lock around writes of durable state (a no-op where the engine
        orders writes itself)."""
        from contextlib import nullcontext
        return nullcontext()


def per_video_best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first (best) hit of each video in every row, padded to ``k``."""
    from storage.ids import INDEX_BITS
    out_s = np.full((len(ids), k), -np.inf, np.float32)
    out_i = np.full((len(ids), k), -1, np.int64)
    for r, (srow, irow) in enumerate(zip(scores, ids)):
        seen, j = set(), 0
        for s, i in zip(srow, irow):
            if i < 0 or (int(i) >> INDEX_BITS) in seen:
                continue
            seen.add(int(i) >> INDEX_BITS)
            out_s[r, j], out_i[r, j] = s, i
            j += 1
            if j == k:
                break
    return out_s, out_i
