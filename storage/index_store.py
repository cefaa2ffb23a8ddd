"""Keeps a concept space's vector backend in step with the catalog, through the change log.

The catalog is the source of truth; the index (FAISS files or a Milvus collection, see
storage.backends) is derived from it and records the last change-log ``seq`` it reflects
(storage.changes). Opening applies only the entries after that seq: every video they touch
is dropped from the index and re-added as the catalog holds it now, which is idempotent.
A full rebuild happens only when the index is unreadable or outgrown, and the old index
serves searches until the new one is saved.

Several processes may share an archive. Each FAISS user holds its own copy in memory:
``follow()`` (a long-lived searcher calls it about once a second) applies other processes'
commits; ``checkpoint()`` saves under the inter-process lock, re-reading the saved manifest
first: when another process saved since, its index is loaded and the log replayed on top,
so no writer regresses another's vectors or manifest. A Milvus collection is one copy for
every process: writers put vectors there before the catalog commit, so a commit is visible
to every searcher at once and following costs nothing.

A read-only store (an archive opened read-only, vidsonar.home) changes only its copy in
memory: the log is replayed there and a missing or damaged FAISS index is rebuilt there, for
this process alone; nothing is saved, and writes that would last (a delete, a checkpoint, a
Milvus rebuild) are refused.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np

from storage import changes
from storage.backends import IndexURL, VectorBackend, parse_index_url
from storage.catalog import Catalog
from vidsonar.errors import (CorruptIndexError, IndexError_, InputError, ReadOnlyArchiveError,
                             SpaceMismatchError)

log = logging.getLogger(__name__)

REPLAY_CHUNK = 500  # videos re-read from the catalog at a time while replaying


def catalog_vectors_setting(url: IndexURL, value: bool | str | None = None) -> bool:
    """Whether the catalog keeps its float16 copy of every vector (``VIDSONAR_CATALOG_VECTORS``,
    default on). Off only where the backend keeps full vectors itself (Milvus)."""
    raw = value if value is not None else os.environ.get("VIDSONAR_CATALOG_VECTORS", "1")
    keep = raw if isinstance(raw, bool) else str(raw).strip().lower() not in ("0", "false", "no", "off")
    if not keep and url.backend == "faiss":
        raise InputError("VIDSONAR_CATALOG_VECTORS=0 needs a backend that keeps full vectors "
                         "(VIDSONAR_INDEX=milvus:...); FAISS rebuilds from the catalog's copy")
    return keep


def make_backend(url: IndexURL, catalog: Catalog, space: str, dim: int, directory: Path,
                 memory_budget: int | None = None, read_only: bool = False) -> VectorBackend:
    if url.backend == "faiss":
        from storage.backends.faiss_backend import FaissBackend
        return FaissBackend(catalog, space, dim, directory, memory_budget, read_only)
    from storage.backends.milvus_backend import MilvusBackend
    return MilvusBackend(url, space, dim, read_only=read_only)


class IndexStore:
    """The index of one concept space, following the catalog's change log."""

    def __init__(self, catalog: Catalog, space: str, dim: int, directory: Path,
                 memory_budget: int | None = None, url: IndexURL | str | None = None,
                 catalog_vectors: bool | None = None, read_only: bool = False):
        self.catalog, self.space, self.dim, self.directory = catalog, space, dim, Path(directory)
        self.memory_budget, self.read_only = memory_budget, read_only
        self.url = url if isinstance(url, IndexURL) else parse_index_url(url)
        self.catalog_vectors = catalog_vectors_setting(self.url, catalog_vectors)
        self.backend = make_backend(self.url, catalog, space, dim, self.directory, memory_budget,
                                    read_only)
        self._opened = False
        self.dirty = False
        self.replayed = 0  # change-log entries applied by this object (replay and follow)
        self.rebuilds = 0  # full rebuilds run by this object

    # --- opening ------------------------------------------------------------------------
    @property
    def index(self) -> VectorBackend:
        """The backend, opened and caught up with the log on first use."""
        if not self._opened:
            self._open()
        return self.backend

    @property
    def gpus(self) -> int:
        return getattr(self.backend, "gpus", 0)

    def _open(self) -> None:
        try:
            self.backend.open()
        except SpaceMismatchError:
            raise
        except CorruptIndexError as exc:
            # the error's advice (run `vidsonar reindex`) is what happens here, on its own
            problem = re.sub(r";? *rebuild (it )?with `vidsonar reindex`", "", str(exc))
            where = " in memory, unsaved (a read-only archive)" if self.read_only else ""
            log.warning("%s: rebuilding it from the catalog%s now (nothing to run)", problem, where)
            self._opened = True
            self.rebuild()
            return
        self._opened = True
        if self.backend.name == "faiss" and self.backend.count == 0 and self.backend.seq == 0 \
                and self.catalog.embedding_count(self.space) > 0:
            # no index yet (or one from before the change log) over a filled catalog
            self.rebuild()
            return
        self.catch_up()
        if self.backend.name == "faiss" and self.backend.count != self._catalog_count():
            log.warning("index %s holds %d vectors after replay, catalog %d: rebuilding",
                        self.directory, self.backend.count, self._catalog_count())
            self.rebuild()

    def _catalog_count(self) -> int:
        return self.catalog.embedding_count(self.space)

    # --- the change log -----------------------------------------------------------------
    def catch_up(self, upto: int | None = None) -> int:
        """Apply the log entries after the index's seq; how many were applied."""
        found = changes.since(self.catalog, self.space, self.backend.seq, upto)
        if found.empty:
            if found.last_seq > self.backend.seq:
                self._set_seq(found.last_seq)  # entries of other spaces only
            return 0
        self._apply(found.videos)
        self._set_seq(max(found.last_seq, self.backend.seq))
        self.replayed += found.entries
        self.dirty = True
        log.info("applied %d change-log entries (%d videos) to the %s index; seq %d",
                 found.entries, len(found.videos), self.space, self.backend.seq)
        return found.entries

    def _set_seq(self, seq: int) -> None:
        self.backend.set_seq(seq)

    def _apply(self, video_ids: np.ndarray) -> None:
        """Make these videos in the index what they are in the catalog now."""
        for start in range(0, len(video_ids), REPLAY_CHUNK):
            chunk = video_ids[start:start + REPLAY_CHUNK]
            rows = changes.video_rows(self.catalog, self.space, chunk, self.dim)
            if rows.vectors is None and len(rows.ids):
                # the catalog keeps no vectors: they went to the (shared) backend before the
                # commit; only videos gone from the catalog are left to remove
                gone = np.setdiff1d(chunk, rows.present)
                self.backend.remove_videos(gone)
                continue
            self.backend.remove_videos(chunk)
            if len(rows.ids):
                self.backend.add(rows.ids, rows.vectors, rows.start, rows.end,
                                 self._tags(rows.present))

    def _tags(self, video_ids) -> dict[int, list[str]] | None:
        if self.backend.name != "milvus":
            return None
        from storage.annotations import tags_of
        return tags_of(self.catalog, [int(v) for v in video_ids])

    def follow(self) -> int:
        """Apply what other processes committed since the last call (cheap when nothing did:
        one max(seq) query). For a shared backend (Milvus) there is nothing to apply."""
        if not self._opened:
            self._open()
            return 0
        if self.backend.shared:
            return 0
        if changes.last_seq(self.catalog) <= self.backend.seq:
            return 0
        return self.catch_up()

    # --- writing ------------------------------------------------------------------------
    def prepare(self, ids: np.ndarray, vectors: np.ndarray, start=None, end=None,
                tags: dict[int, list[str]] | None = None) -> None:
        """Before the catalog commit of a video: a shared backend (Milvus) takes the vectors
        now, so a committed video is never missing from it; FAISS does nothing here."""
        if self.backend.shared and len(ids):
            from storage.ids import INDEX_BITS
            self.index.remove_videos(np.unique(np.asarray(ids, np.int64) >> INDEX_BITS))
            self.backend.add(ids, vectors, start, end, tags)

    def add(self, ids: np.ndarray, vectors: np.ndarray, seq: int | None = None) -> None:
        """After the catalog commit whose change-log entry is ``seq``: add the vectors.

        When ``seq`` follows the index's own, the vectors in hand are added (as float16, the
        precision the catalog keeps, so the result equals a rebuild); otherwise other
        processes committed in between and the log is replayed up to ``seq``.
        """
        if not len(ids):
            return
        index = self.index
        if self.backend.shared:
            if seq is not None:
                self._set_seq(max(seq, self.backend.seq))
            self.dirty = True
            return
        if seq is not None and seq != index.seq + 1:
            self.catch_up(upto=seq)
            return
        vectors = np.asarray(vectors, np.float16).astype(np.float32)
        self.backend.add(np.asarray(ids, np.int64), vectors)
        if seq is not None:
            self._set_seq(seq)
        self.dirty = True

    def remove_video(self, video_id: int) -> int:
        removed = self.index.remove_videos([video_id])
        self.dirty = self.dirty or removed > 0
        return removed

    def delete_video(self, video_id: int, thumbs: Path | None = None) -> tuple[int, bool]:
        """Remove a video's vectors, then its catalog rows (with a ``delete`` log entry).

        The index loses the vectors *before* the catalog rows go, so no crash can leave it
        returning snippets the catalog no longer has; a crash in between is repaired by
        deleting again. ``Archive.delete_video`` calls this, then removes the thumbnails
        (``thumbs``, a thumbnails folder, still does it here for callers that pass one).
        """
        self._require_writable(f"delete video {video_id}")
        # the video's rows, read before the index changes: a catalog that cannot be reached
        # fails here, and the vectors go back from them if the delete does not commit
        held = changes.video_rows(self.catalog, self.space, [video_id], self.dim)
        removed = self.remove_video(video_id)
        try:
            if not self.backend.shared:  # Milvus keeps the removal itself: no call to fail here
                self.checkpoint()
            deleted = self.catalog.delete_video(video_id)
        except Exception:
            # the catalog kept the video (a full disk, its server gone): give the index its
            # vectors back, or searches here would miss a video every other process still finds
            try:
                self._give_back(video_id, held)
                self.dirty = True
            except Exception:  # noqa: BLE001 - the first error is the one to report
                log.exception("could not give video %d its vectors back; deleting it again repairs it",
                              video_id)
            raise
        if deleted and not self.backend.shared:
            self.catch_up()  # our own delete entry: nothing left to remove, only the seq moves
        if thumbs is not None:
            shutil.rmtree(Path(thumbs) / str(video_id), ignore_errors=True)
        return removed, deleted

    def _give_back(self, video_id: int, held: changes.VideoRows) -> None:
        """Put a video's vectors back from rows read before (no catalog needed), or, where
        the catalog keeps none (Milvus), as the catalog holds them now."""
        if held.vectors is None:
            self._apply(np.array([video_id], np.int64))
            return
        self.backend.remove_videos([video_id])
        if len(held.ids):
            self.backend.add(held.ids, held.vectors, held.start, held.end, self._tags(held.present))

    def checkpoint(self) -> int:
        """Save the index with the seq it reflects, under the inter-process lock; return it.

        The saved seq is re-read under the lock: if another process saved since this copy
        was loaded, its index is loaded and the log replayed on top before saving, so the
        file never goes back to fewer changes. The ingestion writer calls this every N
        videos or M seconds, so a crash loses at most that much index work.
        """
        self._require_writable("save the index")
        index = self.index
        with self.backend.lock():
            if not self.backend.shared and self.backend.disk_changed():
                self.backend.open()  # another process's newer save: build on it
                self.dirty = True
            self.catch_up()
            saved = self.backend.saved_seq()
            if self.dirty or saved is None or saved < self.backend.seq:
                self.backend.save(self.backend.seq)
            self.dirty = False
        return index.seq

    def save(self) -> None:
        """Kept for callers of the old API: a checkpoint when something changed (none where
        read-only: what the copy in memory replayed is in the catalog already)."""
        if self._opened and self.dirty and not self.read_only:
            self.checkpoint()

    def _require_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyArchiveError(self.directory, action, "opened read-only")

    # --- building -----------------------------------------------------------------------
    def rebuild(self, factory: str | None = None, params: str | None = None,
                k_factor: int | None = None):
        """A full rebuild from the catalog; searches go on against the old index meanwhile.

        The seq is read before the catalog is scanned; entries committed during the build are
        replayed on top before the new index is saved (under the lock) and swapped in; a
        read-only store keeps the new index in memory only.
        """
        if not self._opened:
            self._opened = True
            try:
                self.backend.open()
            except CorruptIndexError:
                pass
        seq = changes.last_seq(self.catalog)
        if self.backend.name != "faiss":
            self._require_writable(f"rebuild the {self.url.redacted()} collection")
            return self._rebuild_shared(seq)
        builds = (getattr(self.backend.index, "manifest", None).builds
                  if self.backend.index is not None else 0)
        fresh = self.backend.build(factory, params, k_factor, builds=builds + 1)
        with self.backend.lock():
            self.backend.install(fresh)
            self._set_seq(seq)
            self.catch_up()
            if not self.read_only:
                self.backend.save(self.backend.seq)
        self.dirty = False
        self.rebuilds += 1
        return self.backend

    def _rebuild_shared(self, seq: int):
        if not self.catalog_vectors:
            raise IndexError_("cannot rebuild the Milvus collection: the catalog keeps no "
                              "vectors (VIDSONAR_CATALOG_VECTORS=0); re-ingest instead")
        self.backend.recreate(self.catalog.embedding_count(self.space))
        videos = np.array([v.id for v in self.catalog.videos("ok")], np.int64)
        for start in range(0, len(videos), REPLAY_CHUNK):
            rows = changes.video_rows(self.catalog, self.space, videos[start:start + REPLAY_CHUNK],
                                      self.dim)
            if rows.vectors is not None and len(rows.ids):
                self.backend.add(rows.ids, rows.vectors, rows.start, rows.end,
                                 self._tags(rows.present))
        self._set_seq(seq)
        self.catch_up()
        self.backend.save(self.backend.seq)
        self.rebuilds += 1
        return self.backend

    def outgrown(self) -> bool:
        """True when the collection has outgrown the index it was built as (see index_choice)."""
        reason = self.index.outgrown() if hasattr(self.index, "outgrown") else None
        if reason:
            log.info("index outgrown: %s", reason)
        return reason is not None

    # --- reading ------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, videos: np.ndarray | None = None,
               k_factor: int | None = None, per_video: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids): exact inner products, reranked where the index is approximate;
        ``videos`` restricts the hits to those videos' snippets."""
        if self.index.count == 0:
            raise IndexError_(f"the {self.space!r} index is empty: ingest some videos first")
        return self.index.search(np.atleast_2d(np.asarray(queries, np.float32)), k,
                                 videos=videos, k_factor=k_factor, per_video=per_video)

    def vectors_for(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, vectors): from the catalog where it keeps them, else from the backend."""
        if self.catalog_vectors:
            return self.catalog.vectors_for(ids, self.space)
        return self.index.vectors(ids)

    def ping(self) -> None:
        """IndexUnreachableError (or IndexRefusedError) while the index's server cannot be
        reached or refuses us: what a caller waiting out an outage polls. Nothing for FAISS."""
        self.backend.ping()

    def describe(self) -> dict:
        return {**self.url.describe(), **self.index.describe(),
                "catalog_vectors": self.catalog_vectors}

    def close(self) -> None:
        self.backend.close()
