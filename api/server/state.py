"""What one running server holds: the archive, made safe to share between threads.

Searches run on the request thread pool while the ingestion worker writes; the index and
the space's models are guarded by explicit wrappers (``locking``) handed to the archive
when it opens, so the query layer and the indexer stay single-threaded code. A read-only
archive (vidsonar.home) gets no worker and no uploads folder: it serves reads only.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from api.server.locking import LockedSpace, LockedStore
from api.server.metrics import Metrics
from api.server.settings import ServerSettings
from api.server.worker import IngestWorker
from search.archive import Archive
from storage.jobs import JobStore
from vidsonar.errors import UnreachableError, VidsonarError

log = logging.getLogger(__name__)


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
    def open(cls, settings: ServerSettings, metrics: Metrics | None = None) -> "ServerState":
        plain = Archive(settings.home, settings.space, index=settings.index,
                        read_only=settings.read_only or None)
        index_lock, text_lock, vision_lock = threading.RLock(), threading.RLock(), threading.RLock()
        metrics = metrics or Metrics()
        space = LockedSpace(plain.space, text_lock, vision_lock,
                            on_batch=lambda n: metrics.query_batch.observe(n))
        archive = Archive(plain.home, space, store=LockedStore(plain.store, index_lock), catalog=plain.catalog)
        upload_dir = (settings.upload_dir or archive.home.root / "uploads").expanduser().resolve()
        if not archive.read_only:
            upload_dir.mkdir(parents=True, exist_ok=True)
        roots = [Path(r).expanduser().resolve() for r in settings.ingest_roots]
        state = cls(settings, archive, upload_dir, roots, index_lock, text_lock, vision_lock, metrics)
        state._start_follower()
        return state

    def _start_follower(self, every: float = 1.0) -> None:
        """Apply other processes' commits (a CLI ingest or delete) to this server's index about
        once a second: one max(seq) query when nothing changed (IndexStore.follow). While the
        catalog database (or the index server) is unreachable it keeps polling, saying so
        once, and catches up on what was committed meanwhile when it is back (the log is
        replayed from the index's seq; a Milvus collection has every committed video's
        vectors already, written before the commit)."""
        self._stop_following = threading.Event()

        def follow() -> None:
            outage: UnreachableError | None = None
            while not self._stop_following.wait(every):
                try:
                    self.store.follow()
                except UnreachableError as exc:
                    if outage is None:
                        log.warning("index follower: %s; polling until it is back", exc)
                    outage = exc
                    continue
                except Exception:  # noqa: BLE001 - keep following; the next poll retries
                    log.exception("following the change log failed")
                    continue
                if outage is not None:
                    log.warning("index follower: %s is reachable again", outage.what)
                    outage = None

        threading.Thread(target=follow, name="index-follower", daemon=True).start()

    def stop_following(self) -> None:
        if getattr(self, "_stop_following", None) is not None:
            self._stop_following.set()

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

