"""The plan stage (on the driver): discover files, stat and hash them, reserve video ids.

Each file becomes a ``PlanItem`` with an ``action``: ``read`` (a video id is reserved and
its item row is pending), ``skip`` (its bytes are already an ingested video), or ``fail``
(it cannot even be hashed). A file whose ingestion item is ``done`` with the same path,
size and mtime, and whose video is still in the catalog, is skipped without hashing.
A file to ingest is claimed (``ItemStore.claim``) before its video id is reserved: of two
runs that plan it at once, the one that loses the claim skips it, and leaves the video alone.

``sweep_incomplete`` runs before planning: it deletes the rows and thumbnails of videos
that a killed run left ``pending`` (their items are pending and no live run owns them),
and thumbnail folders that belong to no video.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from indexer.discover import content_hash, not_a_file, real_path
from indexer.stages.read import FILE_ERRORS, error_message
from storage.catalog import Catalog, Video
from storage.items import DONE, FAILED, PENDING, ItemStore
from storage.jobs import JobStore
from vidsonar.errors import CatalogError, MediaError

log = logging.getLogger(__name__)

READ, SKIP, FAIL = "read", "skip", "fail"
#: how long the planner trusts its list of jobs whose process is gone (``Planner._claim``)
LIVE_JOBS_SECONDS = 2.0
DUPLICATE = "duplicate"  # the same bytes as a file planned earlier in this run, not yet written


@dataclass(frozen=True)
class PlanItem:
    order: int  # position in the run: reports list failures in this order
    path: Path
    action: str  # read | skip | fail | duplicate (of video_id, in flight)
    size: int = 0
    mtime_ns: int = 0
    digest: str | None = None
    video_id: int | None = None
    error: str | None = None
    #: the video this path held before its bytes changed (the writer retires it, ``Writer.retire``)
    replaces: int | None = None

    @property
    def key(self) -> str:
        """The ingestion item's key: the absolute path."""
        return str(real_path(self.path))

    def task(self) -> dict:
        """What the read stage needs (plain data, for any runner)."""
        return {"video_id": int(self.video_id), "path": str(self.path), "order": self.order}


class Planner:
    def __init__(self, catalog: Catalog, items: ItemStore, run_id: int | None,
                 job_id: int | None, report):
        self.catalog, self.items, self.run_id, self.job_id = catalog, items, run_id, job_id
        self.report = report
        self._reserved: set[str] = set()  # digests reserved by this run
        self._gone: set[int] = set()  # ids of running jobs whose processes are gone (_claim)
        self._gone_at = -float("inf")

    def plan(self, files: Iterable[Path]) -> Iterator[PlanItem]:
        for order, path in enumerate(files):
            yield self.plan_one(order, Path(path))

    def plan_one(self, order: int, path: Path) -> PlanItem:
        size = mtime = 0
        digest = None
        try:
            with self.report.timed("hash"):
                if not path.is_file():
                    raise MediaError(str(path), not_a_file(path))
                st = path.stat()
                size, mtime = st.st_size, st.st_mtime_ns
                key = str(real_path(path))
                item = self.items.get(key)
                if self._unchanged_and_done(item, size, mtime):
                    self.items.put(key, size=size, mtime_ns=mtime, status=DONE, job_id=self.job_id)
                    return PlanItem(order, path, SKIP, size, mtime, item.content_hash, item.video_id)
                digest = content_hash(path)
                self.report.hashed += 1
            # the path held other bytes, made into a video, when it was last ingested
            replaces = (item.video_id if item is not None and item.video_id is not None
                        and item.content_hash not in (None, digest) else None)
            known = self.catalog.video_by_hash(digest)
            if known is not None and known.status == "ok":
                self.items.put(key, size=size, mtime_ns=mtime, status=DONE, job_id=self.job_id,
                               content_hash=digest, video_id=known.id, hashed=True)
                return PlanItem(order, path, SKIP, size, mtime, digest, known.id, replaces=replaces)
            if not self._claim(key, size, mtime, digest):
                # another run that is still alive has the file in hand: ingesting it here too
                # would encode it twice and log two adds; its own outcome is the file's
                holder = self.items.get(key)
                log.info("%s: being ingested by job %s, still running; left to it", path,
                         holder and holder.job_id)
                return PlanItem(order, path, SKIP, size, mtime, digest, known and known.id)
            if known is not None and known.status == "pending" and self._twin_elsewhere(known.id):
                # the same bytes, at another path, are in the hands of another live run: this
                # path shares that video, ok once that run completes it (re-planned if it fails)
                self.items.set_status(key, DONE, video_id=known.id)
                log.info("%s: its bytes are being ingested by another run; left to it", path)
                return PlanItem(order, path, SKIP, size, mtime, digest, known.id, replaces=replaces)
            if digest in self._reserved:  # its twin is in flight: the writer settles it after
                return PlanItem(order, path, DUPLICATE, size, mtime, digest, known.id, replaces=replaces)
            self._reserved.add(digest)
            # claimed first: a run killed here leaves a pending item of a dead job (and maybe a
            # pending video no live item holds), both of which the next sweep clears
            # absolute: a server or a repair run from another folder must find the file
            video_id = self.catalog.reserve_video(str(path.absolute()), digest, size, self.run_id)
            self.items.set_status(key, PENDING, video_id=video_id)
            return PlanItem(order, path, READ, size, mtime, digest, video_id, replaces=replaces)
        except CatalogError:
            # the catalog's, not this file's (unreachable, refusing us, out of video ids): the
            # run stops in one line, where each file would fail with it; the next run resumes
            raise
        except FILE_ERRORS as exc:
            return PlanItem(order, path, FAIL, size, mtime, digest, None, error_message(path, exc))

    def _claim(self, key: str, size: int, mtime: int, digest: str) -> bool:
        """Take the file for this run, unless another live run holds it (``ItemStore.claim``)."""
        now = time.monotonic()
        if now - self._gone_at > LIVE_JOBS_SECONDS:  # one query a few seconds, not one a file
            self._gone, self._gone_at = set(JobStore(self.catalog).gone_running()), now
        return self.items.claim(key, self.job_id, self._gone, size=size, mtime_ns=mtime,
                                content_hash=digest)

    def _twin_elsewhere(self, video_id: int) -> bool:
        """Whether another path of ``video_id`` is pending under another job that is alive."""
        live = set(JobStore(self.catalog).live_running())
        return any(h.job_id not in (None, self.job_id) and h.job_id in live
                   for h in self.items.pending_for(video_id))

    def _unchanged_and_done(self, item, size: int, mtime: int) -> bool:
        if item is None or item.status != DONE or item.video_id is None:
            return False
        if item.size_bytes != size or item.mtime_ns != mtime:
            return False
        video = self.catalog.video(item.video_id)  # deleted since? then ingest it again
        return video is not None and video.status == "ok" and video.content_hash == item.content_hash


def sweep_incomplete(catalog: Catalog, items: ItemStore, jobs: JobStore, thumbs: Path) -> list[int]:
    """Clear what runs that are gone left half-done; return the ids of the videos swept.

    A pending video held by a live run (another CLI, the server's worker) is left alone.
    Otherwise its snippet rows and thumbnails go; its vectors never reached the index (they
    are added after the catalog marks the video ok). The video row itself is kept while its
    file is still there, as the reservation of its id: redoing the file reuses it, so a
    resumed archive has the ids, and so the snippet ids, of an uninterrupted run. Rows of
    files that are gone are deleted, and so are thumbnail folders of no video.
    """
    jobs.reap_dead_cli()
    live = set(jobs.live_running())
    held = {i.video_id for i in items.pending() if i.job_id in live and i.video_id is not None}
    swept = []
    for video in catalog.videos(status="pending"):
        if video.id in held:
            continue
        if Path(video.path).is_file():
            catalog.clear_snippets(video.id)
        else:
            catalog.delete_video(video.id)
        shutil.rmtree(Path(thumbs) / str(video.id), ignore_errors=True)
        swept.append(video.id)
    for item in items.pending():
        if item.job_id not in live:
            items.set_status(item.path, FAILED, error="interrupted: the run was killed; retried next run")
    if Path(thumbs).is_dir():
        with catalog.session() as s:
            known = set(s.scalars(sa.select(Video.id)))
        for folder in Path(thumbs).iterdir():
            if folder.is_dir() and folder.name.isdigit() and int(folder.name) not in known:
                shutil.rmtree(folder, ignore_errors=True)
    if swept:
        log.info("swept %d videos a killed run left incomplete: %s", len(swept), swept)
    return swept
