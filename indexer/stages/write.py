"""The write stage (on the driver): per video, thumbnails, then catalog rows and vectors, then the index.

Rows arrive in any order (Ray) or in file order (local); a video is written once its end row
and all ``n`` of its snippet rows are in. A row that comes twice counts once, and two that
disagree (reads of a file that changed between them) fail the video, so what a runner sends
again never makes a video whole that is not. Writing is idempotent per video: thumbnails are
overwritten, ``complete_video`` replaces the video's snippets in one transaction (with its
shots and its ingest item's ``done``: one commit a video), and the index gets the vectors only
after that commit. Thumbnails go first, while the video is still ``pending``, each renamed
into place whole, so a killed run never leaves an ``ok`` video without its thumbnails or with
a truncated one (they are not synced: one that a power loss damaged is found and made again,
``indexer.thumb_repair``); the next run sweeps what a crash left pending.

The index is checkpointed every ``every_videos`` videos or ``every_seconds`` seconds, so a
crash loses at most that much index work (the catalog loses none).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from indexer.discover import real_path
from indexer.stages.plan import DUPLICATE, FAIL, SKIP, PlanItem
from indexer.thumbs import thumbnail_path
from storage.atomic import atomic_write_files
from storage.catalog import Catalog, SnippetRecord
from storage.ids import pack_snippet_id
from storage.index_store import IndexStore
from storage.items import DONE, FAILED, ItemStore
from storage.shots import write_shots
from vidsonar.errors import NotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoints:
    """When to save the index during a run (0 turns a trigger off)."""
    every_videos: int = 50
    every_seconds: float = 60.0

    @classmethod
    def from_env(cls, every_videos: int | None = None, every_seconds: float | None = None):
        """Options win, then $VIDSONAR_CHECKPOINT_EVERY / $VIDSONAR_CHECKPOINT_SECONDS."""
        videos = every_videos if every_videos is not None else int(
            os.environ.get("VIDSONAR_CHECKPOINT_EVERY", cls.every_videos))
        seconds = every_seconds if every_seconds is not None else float(
            os.environ.get("VIDSONAR_CHECKPOINT_SECONDS", cls.every_seconds))
        return cls(max(0, videos), max(0.0, seconds))


def checkpoint_index(store: IndexStore) -> None:
    """Save the index with the change-log seq it reflects, under the inter-process lock (a crash
    then costs a replay of what came after, never a rebuild)."""
    store.checkpoint()


def _unchanged(item) -> bool:
    """Whether an ingestion item's file still has the size and mtime it was ingested with."""
    try:
        st = os.stat(item.path)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (item.size_bytes, item.mtime_ns)


def _differ(a: dict, b: dict) -> bool:
    """Whether two rows of one snippet came from reads that disagree (a row seen twice, as a
    runner that reads a file again may send it, is the same where its times and thumbnail are)."""
    return a is not b and any(a[k] != b[k] for k in ("start", "end", "frame_times", "thumb"))


class Writer:
    def __init__(self, catalog: Catalog, store: IndexStore, thumbs: Path, space: str,
                 items: ItemStore, report, run_id: int | None, job_id: int | None = None,
                 checkpoints: Checkpoints = Checkpoints(),
                 progress: Callable[[Path, str], None] | None = None):
        self.catalog, self.store, self.thumbs, self.space = catalog, store, Path(thumbs), space
        self.items, self.report, self.run_id, self.job_id = items, report, run_id, job_id
        self.checkpoints, self.progress = checkpoints, progress
        self.plans: dict[int, PlanItem] = {}  # video id -> what the plan said, for files in flight
        self._rows: dict[int, dict[int, dict]] = {}  # video id -> snippet idx -> row
        self._ends: dict[int, dict] = {}
        self._failures: list[tuple[int, dict]] = []
        self._twins: dict[int, list[PlanItem]] = {}  # video id -> later files with the same bytes
        #: video id -> (its path, None once written or its failure): a twin whose plan comes
        #: after that (the local runner passes plan items on ahead of batched rows) is settled then
        self._settled: dict[int, tuple[Path, str | None]] = {}
        self._since_checkpoint, self._last_checkpoint = 0, time.monotonic()

    # --- what the plan decided ---------------------------------------------------------
    def planned(self, item: PlanItem) -> None:
        """Take a plan item: skips and plan failures are final here; reads wait for rows."""
        if item.replaces is not None:
            self.retire(item)
        if item.action == SKIP:
            self.report.skipped += 1
            self._tell(item.path, "skipped")
        elif item.action == FAIL:
            self._fail(item, item.error or "failed")
        elif item.action == DUPLICATE and item.video_id in self._settled:
            self._settle_twin(item, *self._settled[item.video_id])
        elif item.action == DUPLICATE:
            self._twins.setdefault(item.video_id, []).append(item)
        else:
            self.plans[item.video_id] = item

    def retire(self, item: PlanItem) -> None:
        """Retire the video whose bytes were at ``item.path`` before they changed, so that no
        hit points at footage the file no longer holds: it moves to another path that still
        has those bytes (a twin ingested before), or else it is deleted, vectors first
        (``IndexStore.delete_video``). A video recorded at another path is left alone."""
        old = self.catalog.video(item.replaces)
        if old is None or old.status != "ok" or old.id == item.video_id:
            return
        if str(real_path(old.path)) != item.key:
            return
        holder = next((i for i in self.items.holders(old.id) if i.path != item.key and _unchanged(i)), None)
        if holder is not None:
            self.catalog.move_video(old.id, holder.path)
            log.info("%s holds other bytes now: video %d moves to %s, which still has its bytes",
                     item.path, old.id, holder.path)
            return
        self.store.delete_video(old.id, self.thumbs)
        self.report.replaced += 1
        log.info("%s holds other bytes now: its video %d (%s) is deleted", item.path, old.id, old.content_hash[:12])

    # --- rows from the read/encode stages ----------------------------------------------
    def accept(self, r: dict) -> None:
        video_id = int(r["video_id"])
        item = self.plans.get(video_id)
        if item is None:
            return  # a late row of a video that already failed
        if r["kind"] == "error" or r.get("error"):
            self._fail(item, r["error"])
            return
        if r["kind"] == "end":
            before = self._ends.setdefault(video_id, r)
            if int(before["n"]) != int(r["n"]):
                self._fail(item, f"{item.path}: two reads of it ended differently ({before['n']} and "
                                 f"{r['n']} snippets): it changed while it was read")
                return
        else:
            rows = self._rows.setdefault(video_id, {})
            before = rows.setdefault(int(r["idx"]), r)
            if _differ(before, r):
                self._fail(item, f"{item.path}: two reads of it gave different snippets at {r['idx']}: "
                                 "it changed while it was read")
                return
        end = self._ends.get(video_id)
        if end is not None and len(self._rows.get(video_id, ())) == int(end["n"]):
            self._complete(item, sorted(self._rows.pop(video_id, {}).values(), key=lambda x: int(x["idx"])),
                           self._ends.pop(video_id))

    def _complete(self, item: PlanItem, rows: list[dict], end: dict) -> None:
        del self.plans[item.video_id]
        try:
            with self.report.timed("thumbnails"):
                # renamed into place before the commit that makes the video ok: a killed run
                # never leaves an ok video with a truncated or empty JPEG
                atomic_write_files({thumbnail_path(self.thumbs, item.video_id, int(r["idx"])): r["thumb"]
                                    for r in rows})
            records = [SnippetRecord(pack_snippet_id(item.video_id, int(r["idx"])), int(r["idx"]), float(r["start"]), float(r["end"]),
                                     json.loads(r["frame_times"])) for r in rows]
            vectors = np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows])
            info = {"duration": records[-1].end, "fps": None if end["fps"] < 0 else float(end["fps"]),
                    "width": int(end["width"]), "height": int(end["height"]),
                    "rotation": int(end["rotation"]),
                    "window_seconds": float(end["window_seconds"]) or None,
                    "hop_seconds": float(end["hop_seconds"]) or None}
            with self.report.timed("write"):
                # the item is done, and the shots are written, in the video's own commit
                also = [partial(self.items.set_status_in, path=item.key, status=DONE,
                                video_id=item.video_id)]
                if end.get("shots"):
                    also.append(partial(write_shots, video_id=item.video_id,
                                        shots=json.loads(end["shots"]), detector=end["detector"],
                                        threshold=None if end["threshold"] < 0 else end["threshold"]))
                ids = np.array([r.id for r in records], np.int64)
                # a shared backend (Milvus) takes the vectors before the commit names them
                self.store.prepare(ids, vectors, [r.start for r in records], [r.end for r in records])
                seq = self.catalog.complete_video(item.video_id, space=self.space, info=info,
                                                  snippets=records, vectors=vectors,
                                                  keep_vectors=self.store.catalog_vectors, also=also)
                self.store.add(ids, vectors, seq=seq)
        except NotFoundError as exc:  # its row was deleted meanwhile: this file alone fails
            self.plans[item.video_id] = item
            self._fail(item, f"{item.path}: {exc}")
            return
        except (OSError, ValueError, RuntimeError) as exc:
            self.plans[item.video_id] = item
            self._fail(item, f"{item.path}: {type(exc).__name__}: {exc}")
            return
        self.report.ingested += 1
        self.report.snippets += len(records)
        self.report.media_seconds += info["duration"]
        self._since_checkpoint += 1
        self._maybe_checkpoint()
        self._tell(item.path, "ingested")
        self._settled[item.video_id] = (item.path, None)
        for twin in self._twins.pop(item.video_id, []):
            self._settle_twin(twin, item.path, None)

    def _settle_twin(self, twin: PlanItem, first: Path, error: str | None) -> None:
        """A file with the same bytes as ``first``, whose video was written (``error`` None)
        or failed: skipped as ingested, or failed with it."""
        if error is not None:
            self._fail(replace(twin, video_id=None),
                       f"{twin.path}: the same bytes as {first}, which failed: {error}")
            return
        self.items.put(twin.key, size=twin.size, mtime_ns=twin.mtime_ns, status=DONE,
                       job_id=self.job_id, content_hash=twin.digest, video_id=twin.video_id)
        self.report.skipped += 1
        self._tell(twin.path, "skipped")

    def _fail(self, item: PlanItem, message: str) -> None:
        log.warning("failed: %s", message)
        self.plans.pop(item.video_id, None)
        self._rows.pop(item.video_id, None)
        self._ends.pop(item.video_id, None)
        self._failures.append((item.order, {"path": str(item.path), "error": message}))
        if item.video_id is not None:
            shutil.rmtree(self.thumbs / str(item.video_id), ignore_errors=True)
        try:
            key = item.digest or f"unreadable:{real_path(item.path)}"  # unique even without content
            self.catalog.record_failure(str(item.path.absolute()), key, item.size, message, self.run_id)
            self.items.put(item.key, size=item.size, mtime_ns=item.mtime_ns, status=FAILED,
                           job_id=self.job_id, error=message)
        except Exception:  # noqa: BLE001 - the report still carries the failure
            log.exception("could not record the failure of %s", item.path)
        self.report.failed = [f for _, f in sorted(self._failures, key=lambda x: x[0])]
        self._tell(item.path, "failed")
        if item.video_id is not None:
            self._settled[item.video_id] = (item.path, message)
            for twin in self._twins.pop(item.video_id, []):
                self._settle_twin(twin, item.path, message)

    def _tell(self, path: Path, outcome: str) -> None:
        if self.progress:
            self.progress(path, outcome)

    # --- the index ---------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        c = self.checkpoints
        due = (c.every_videos and self._since_checkpoint >= c.every_videos) or \
              (c.every_seconds and time.monotonic() - self._last_checkpoint >= c.every_seconds)
        if due:
            self.checkpoint()

    def checkpoint(self) -> None:
        with self.report.timed("index_save"):
            checkpoint_index(self.store)
        self._since_checkpoint, self._last_checkpoint = 0, time.monotonic()

    def unfinished(self) -> list[PlanItem]:
        """Videos the plan sent to be read whose rows never all came (a runner bug if any)."""
        return list(self.plans.values())

