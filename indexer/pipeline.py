"""Ingestion as reader -> mapper -> writer, each stage timed.

- reader: hash the file, skip footage already ingested, decode 8-frame snippets (PyAV);
- mapper: embed snippets in batches with the concept space's vision encoder;
- writer: thumbnails, then the catalog (one transaction per video), then the index.

Every file fails alone: its error is recorded in the catalog and the report, and the batch
goes on. A video's rows are written only once all its snippets are embedded, so a failure
half-way leaves no partial video behind.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace
from indexer.decode import probe
from indexer.discover import content_hash, discover
from indexer.overlap import iter_windows
from indexer.sampling import DEFAULT_HOP, DEFAULT_WINDOW, FRAMES_PER_SNIPPET, overlap_factor
from indexer.thumbs import save_thumbnail, thumbnail_path
from storage.catalog import Catalog, SnippetRecord
from storage.ids import MAX_SNIPPETS_PER_VIDEO, pack_snippet_id
from storage.index_store import IndexStore
from vidsonar.errors import InputError, MediaError, VidsonarError

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    ingested: int = 0
    skipped: int = 0
    snippets: int = 0
    failed: list[dict] = field(default_factory=list)
    media_seconds: float = 0.0
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def realtime_factor(self) -> float:
        """Seconds of footage ingested per second of wall time."""
        return self.media_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def to_json(self) -> dict:
        return {"ingested": self.ingested, "skipped": self.skipped, "snippets": self.snippets,
                "failed": self.failed, "media_seconds": round(self.media_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3),
                "x_realtime": round(self.realtime_factor, 2),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}}


class Ingestor:
    def __init__(self, catalog: Catalog, space: ConceptSpace, store: IndexStore, thumbs: Path,
                 window: Fraction | float = DEFAULT_WINDOW, frames: int = FRAMES_PER_SNIPPET,
                 batch_snippets: int = 16, hop: Fraction | float | None = DEFAULT_HOP):
        self.catalog, self.space, self.store, self.thumbs = catalog, space, store, Path(thumbs)
        self.window, self.frames, self.batch_snippets = window, frames, batch_snippets
        self.hop = hop  # None: windows do not overlap
        try:
            overlap_factor(window, window if hop is None else hop, frames)
        except ValueError as exc:
            raise InputError(str(exc)) from exc

    def ingest(self, paths: Iterable[str | Path],
               progress: Callable[[Path, str], None] | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files = discover(paths)
        # Load (or rebuild) the index before this run commits anything: loaded lazily after the
        # first video's catalog commit, it would be rebuilt with that video and then get it again.
        _ = self.store.index
        run_id = self.catalog.start_run(self.space.name)
        try:
            for path in files:
                outcome = self._ingest_one(path, run_id, report)
                if progress:
                    progress(path, outcome)
        finally:
            with _timed(report, "index_save"):
                self.store.save()
            report.wall_seconds = time.perf_counter() - started
            self.catalog.finish_run(run_id, ingested=report.ingested, skipped=report.skipped,
                                    failed=len(report.failed), snippets=report.snippets,
                                    media_seconds=report.media_seconds,
                                    wall_seconds=report.wall_seconds)
        if self.store.outgrown():
            log.info("collection outgrew its %s index: rebuilding", self.store.index.manifest.factory)
            with _timed(report, "reindex"):
                self.store.rebuild()
        return report

    def _ingest_one(self, path: Path, run_id: int, report: IngestReport) -> str:
        video_id, digest, size = None, None, 0
        try:
            with _timed(report, "hash"):
                if not path.is_file():
                    raise MediaError(str(path), "no such file")
                digest, size = content_hash(path), path.stat().st_size
            known = self.catalog.video_by_hash(digest)
            if known is not None and known.status == "ok":
                report.skipped += 1
                return "skipped"
            video_id = self.catalog.reserve_video(str(path), digest, size, run_id)
            info, records, vectors = self._embed_video(path, video_id, report)
            with _timed(report, "write"):
                self.catalog.complete_video(video_id, space=self.space.name, info=info,
                                            snippets=records, vectors=vectors)
                self.store.add(np.array([r.id for r in records], np.int64), vectors)
            report.ingested += 1
            report.snippets += len(records)
            report.media_seconds += info["duration"]
            return "ingested"
        except (VidsonarError, OSError, ValueError, RuntimeError) as exc:
            # one file's failure must not stop the batch; record it and go on
            message = str(exc) if isinstance(exc, MediaError) else f"{path}: {type(exc).__name__}: {exc}"
            log.warning("failed: %s", message)
            report.failed.append({"path": str(path), "error": message})
            if video_id is not None:
                shutil.rmtree(self.thumbs / str(video_id), ignore_errors=True)
            try:
                key = digest or f"unreadable:{path.resolve()}"  # unique even without content
                self.catalog.record_failure(str(path), key, size, message, run_id)
            except Exception:  # noqa: BLE001 - the report still carries the failure
                log.exception("could not record the failure of %s", path)
            return "failed"

    def _embed_video(self, path: Path, video_id: int, report: IngestReport):
        with _timed(report, "decode"):
            info = probe(path)
        records: list[SnippetRecord] = []
        vectors: list[np.ndarray] = []
        batch: list = []
        rotation = 0

        def flush() -> None:
            with _timed(report, "encode"):
                vectors.append(self.space.encode_snippets(np.stack([s.frames for s in batch])))
            batch.clear()

        snippets = iter_windows(path, self.window, self.hop, self.frames, self.space.frame_size, info)
        while True:
            with _timed(report, "decode"):
                snippet = next(snippets, None)
            if snippet is None:
                break
            w, rotation = snippet.window, snippet.rotation
            if w.index >= MAX_SNIPPETS_PER_VIDEO:
                raise MediaError(str(path), f"longer than {MAX_SNIPPETS_PER_VIDEO} snippets")
            with _timed(report, "thumbnails"):
                save_thumbnail(snippet.frames[len(snippet.frames) // 2],
                               thumbnail_path(self.thumbs, video_id, w.index))
            records.append(SnippetRecord(pack_snippet_id(video_id, w.index), w.index, float(w.start),
                                         float(w.end), [float(t) for t in w.frame_times]))
            batch.append(snippet)
            if len(batch) >= self.batch_snippets:
                flush()
        if batch:
            flush()
        meta = {"duration": records[-1].end, "fps": info.fps, "width": info.width,
                "height": info.height, "rotation": rotation, "window_seconds": float(self.window),
                "hop_seconds": float(self.hop if self.hop is not None else self.window)}
        return meta, records, np.concatenate(vectors)


class _timed:
    def __init__(self, report: IngestReport, stage: str):
        self.report, self.stage = report, stage

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.report.stage_seconds[self.stage] += time.perf_counter() - self.t
