"""An archive: one VIDSONAR_HOME with its catalog, a concept space and that space's index.

The one place that wires the layers together, so the CLI, the server and the benchmarks
open an archive the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from encoders.base import ConceptSpace
from encoders.registry import get_space_config, load_space, scan_dir
from indexer.pipeline import Ingestor
from indexer.thumb_repair import ThumbRepair, remake_thumbnail, repair_thumbnails
from indexer.thumb_repair import check_thumbnails as find_thumbnail_gaps
from indexer.thumbs import thumbnail_intact, thumbnail_path
from search.searcher import Searcher
from storage.backends import parse_index_url
from storage.catalog import Catalog
from storage.ids import unpack_snippet_id
from storage.index_store import IndexStore
from storage.items import ItemStore
from storage.jobs import JobStore
from vidsonar.errors import BusyError
from vidsonar.home import Home

DEFAULT_SPACE = "lite"


class Archive:
    """A home, its catalog, a concept space and that space's index, made on first use.

    ``space`` is a name (loaded from the registry) or a ConceptSpace object already built (a
    test's fake, models loaded once and shared, the server's locked wrapper), as SONAR's
    pipelines take a card name or a model. ``store`` and ``catalog`` may be given the same way.

    A read-only home (``read_only``, else $VIDSONAR_READ_ONLY, else a home this user cannot
    write: vidsonar.home) opens its catalog and index read-only; ``ingestor`` and
    ``delete_video`` refuse before doing anything.
    """

    def __init__(self, home: Home | str | None = None, space: str | ConceptSpace | None = None, *,
                 store: IndexStore | None = None, catalog: Catalog | None = None,
                 index: str | None = None, read_only: bool | None = None):
        self.home = home if isinstance(home, Home) else Home.resolve(home, read_only)
        scan_dir(self.home.root / "spaces")
        self._space = space if isinstance(space, ConceptSpace) else None
        self._space_name = space.name if isinstance(space, ConceptSpace) else space
        self._store, self._catalog = store, catalog
        self.index_url = parse_index_url(index)  # --index, else $VIDSONAR_INDEX, else faiss

    @property
    def read_only(self) -> bool:
        return self.home.read_only

    def require_writable(self, action: str) -> None:
        """Refuse ``action`` (words: "ingest", "tag videos") on a read-only archive, at once."""
        self.home.require_writable(action)

    @cached_property
    def catalog(self) -> Catalog:
        if self._catalog is not None:
            return self._catalog
        return Catalog(self.home.db_url, read_only=self.read_only)

    @cached_property
    def space_name(self) -> str:
        """--space, else $VIDSONAR_SPACE, else the archive's only space, else 'lite'."""
        if self._space is not None:
            return self._space.name
        if self._space_name or os.environ.get("VIDSONAR_SPACE"):
            name = self._space_name or os.environ["VIDSONAR_SPACE"]
        else:
            spaces = self.catalog.spaces()
            name = spaces[0] if len(spaces) == 1 else DEFAULT_SPACE
        get_space_config(name)  # unknown names fail here, listing the known ones
        return name

    @cached_property
    def space(self) -> ConceptSpace:
        if self._space is not None:
            return self._space
        return load_space(self.space_name, cache_dir=self.home.cache)

    @cached_property
    def store(self) -> IndexStore:
        if self._store is not None:
            return self._store
        dim = self._space.dim if self._space is not None else get_space_config(self.space_name).dim
        return IndexStore(self.catalog, self.space_name, dim, self.home.index_dir(self.space_name),
                          url=self.index_url, read_only=self.read_only)

    def ingestor(self, **kwargs) -> Ingestor:
        self.require_writable("ingest")
        return Ingestor(self.catalog, self.space, self.store, self.home.thumbs, **kwargs)

    def searcher(self) -> Searcher:
        return Searcher(self.catalog, self.space, self.store, self.home.thumbs)

    def delete_video(self, video_id: int) -> tuple[int, bool]:
        """Delete a video: its vectors from the index first, then its catalog rows (with a
        change-log entry other processes follow), then its thumbnails. (vectors removed, row
        deleted)."""
        import shutil
        self.require_writable(f"delete video {video_id}")
        self._refuse_if_in_flight(video_id)
        removed, deleted = self.store.delete_video(video_id)
        shutil.rmtree(self.home.thumbs / str(video_id), ignore_errors=True)
        return removed, deleted

    def _refuse_if_in_flight(self, video_id: int) -> None:
        """BusyError when a live run is still ingesting the video: with its row gone, SQLite
        gives its id to the next video reserved, and that run would mix the two files' rows.
        A pending video that no live run holds (a killed run's) may go."""
        video = self.catalog.video(video_id)
        if video is None or video.status != "pending":
            return
        live = set(JobStore(self.catalog).live_running())
        holders = sorted({i.job_id for i in ItemStore(self.catalog).pending_for(video_id)} & live)
        if holders:
            raise BusyError(f"video {video_id} is still being ingested by job {holders[0]}; "
                            "delete it once that job is done (`vidsonar jobs`, GET /api/jobs)")

    def thumbnail(self, snippet_id: int) -> Path:
        """A snippet's thumbnail file, made again from its video if it went missing or is not
        a whole JPEG (``indexer.thumb_repair``); NotFoundError when the video file is gone too,
        MediaError when it no longer holds the footage ingested."""
        path = thumbnail_path(self.home.thumbs, *unpack_snippet_id(snippet_id))
        if thumbnail_intact(path):
            return path
        root = self.home.remade_thumbs  # a read-only home's are made in the cache
        remade = thumbnail_path(root, *unpack_snippet_id(snippet_id))
        if remade != path and thumbnail_intact(remade):
            return remade
        return remake_thumbnail(self.catalog, root, snippet_id, self.space.frame_size)

    def repair_thumbnails(self, progress: Callable[[int, int, str | None], None] | None = None
                          ) -> ThumbRepair:
        """Make every missing or damaged thumbnail again from the video files (one failed video
        fails alone)."""
        self.require_writable("repair thumbnails")
        return repair_thumbnails(self.catalog, self.home.thumbs, self.space.frame_size, progress)

    def info(self, check_thumbnails: bool = False) -> dict:
        """What the archive holds. ``missing_thumbnails`` and ``damaged_thumbnails`` are
        counted only with ``check_thumbnails`` (None otherwise): it reads every snippet row,
        lists every video's thumbnail folder and reads both ends of each file, too slow for
        each ``info`` of a large archive."""
        counts = self.catalog.counts()
        manifest = self.store.index.manifest
        run = self.catalog.last_run()
        makers = self.catalog.vector_makers(self.space_name)
        thumbs = find_thumbnail_gaps(self.catalog, self.home.thumbs) if check_thumbnails else None
        return {
            "home": str(self.home.root),
            "read_only": self.read_only,
            "catalog": self.catalog.display_url,  # never the password (GET /api/info shows it)
            **counts,
            "space": self.space_name,
            "spaces_in_catalog": self.catalog.spaces(),
            "index": {**self.index_url.describe(),
                      "factory": manifest.factory, "params": manifest.params,
                      "count": self.store.index.count, "dim": manifest.dim,
                      "seq": manifest.seq, "builds": manifest.builds,
                      "catalog_vectors": self.store.catalog_vectors,
                      "path": str(self.store.directory) if self.index_url.backend == "faiss"
                      else None},
            "last_run": None if run is None else {
                "id": run.id, "ingested": run.ingested, "skipped": run.skipped,
                "failed": run.failed, "snippets": run.snippets,
                "x_realtime": round(run.media_seconds / run.wall_seconds, 2) if run.wall_seconds else None},
            # who made this space's vectors (encoders.identity); mixed: two recorded fingerprints
            "vector_makers": [{"fingerprint": m.fingerprint, "encoder": m.encoder, "videos": m.videos,
                               "first_run": m.first_run, "last_run": m.last_run} for m in makers],
            "mixed_encoders": len({m.fingerprint for m in makers if m.fingerprint}) > 1,
            "missing_thumbnails": None if thumbs is None else sum(map(len, thumbs.missing.values())),
            "damaged_thumbnails": None if thumbs is None else sum(map(len, thumbs.damaged.values())),
        }
