"""Ingestion: the stages of ``indexer.stages`` composed by a runner of ``indexer.runners``.

- plan (driver): discover, stat, hash (or trust an unchanged finished item), reserve ids;
- read (pure): a path -> its snippet rows (8 frames, exact time codes, thumbnail JPEG), or an error row;
- encode: embed snippet rows in batches, with the model built once per worker;
- write (driver): thumbnails, catalog rows and vectors, then the index, per video.

Runners: ``local`` (default; decoding overlaps encoding in threads, batches span videos),
``sequential`` (one file at a time, as the pipeline always ran) and ``ray`` (Ray Data).

Every file fails alone: its error is recorded in the catalog, its ingestion item and the
report, and the batch goes on. A video's rows are written only once all its snippets are
embedded, so a failure half-way leaves no partial video behind. Every run is a job (kind
``cli`` unless a server job is given), and a run killed at any moment is finished by the
next: unchanged finished files are skipped unhashed, leftovers of the killed run are swept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

from encoders.base import ConceptSpace
from indexer.discover import discover
from indexer.provenance import check_vector_makers
from indexer.report import IngestReport
from indexer.sampling import DEFAULT_HOP, DEFAULT_WINDOW, FRAMES_PER_SNIPPET, overlap_factor
from indexer.shots import DEFAULT_DETECTOR, validate_detector
from indexer.stages import (Checkpoints, Encoder, Planner, ReadSpec, SpaceSpec, Writer,
                            sweep_incomplete)
from storage.catalog import Catalog
from storage.index_store import IndexStore
from storage.items import ItemStore
from storage.jobs import DONE, FAILED, JobStore
from storage.leases import take as take_lease
from vidsonar.errors import InputError, UnreachableError

log = logging.getLogger(__name__)

RUNNERS = ("local", "sequential", "ray")

__all__ = ["Ingestor", "IngestReport", "RUNNERS"]


class Ingestor:
    def __init__(self, catalog: Catalog, space: ConceptSpace, store: IndexStore, thumbs: Path,
                 window: Fraction | float = DEFAULT_WINDOW, frames: int = FRAMES_PER_SNIPPET,
                 batch_snippets: int | None = None, runner: str = "local", ray_options=None,
                 checkpoints: Checkpoints | None = None, shots: str | None = None,
                 shot_threshold: float | None = None, hop: Fraction | float | None = DEFAULT_HOP,
                 decoders: int | None = None, allow_mixed_encoders: bool = False):
        if runner not in RUNNERS:
            raise InputError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
        self.catalog, self.space, self.store, self.thumbs = catalog, space, store, Path(thumbs)
        self.window, self.frames = window, frames
        if batch_snippets is not None and batch_snippets < 1:
            raise InputError(f"batch_snippets must be at least 1, not {batch_snippets}")
        self.batch_snippets = batch_snippets  # None: the space's ConceptSpace.snippet_batch
        self.runner, self.ray_options = runner, ray_options
        if runner == "ray" and ray_options is not None and ray_options.address:
            from indexer.runners.ray import check_address
            check_address(ray_options.address)  # before any work: ray.init would try for minutes
        if decoders is not None and decoders < 1:
            raise InputError(f"decoders must be at least 1, not {decoders}")
        self.decoders = decoders  # decoder threads of the local runner; None: default_decoders
        self.allow_mixed_encoders = allow_mixed_encoders  # indexer.provenance
        self.checkpoints = checkpoints or Checkpoints.from_env()
        self.hop = hop  # None: windows do not overlap
        try:
            overlapping = overlap_factor(window, window if hop is None else hop, frames) > 1
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        if shots is None:  # overlapping windows tile the fixed grid; plain ones follow shots
            shots = "none" if overlapping else DEFAULT_DETECTOR
        elif overlapping and shots != "none":
            raise InputError(f"overlapping windows (hop) tile the fixed grid: --shots {shots} "
                             "and --hop cannot be combined (give --shots none, or no --hop)")
        self.shots, self.shot_threshold = shots, shot_threshold  # detector name, or "none"
        validate_detector(shots, shot_threshold)  # a bad name or threshold fails before any work

    def ingest(self, paths: Iterable[str | Path],
               progress: Callable[[Path, str], None] | None = None,
               job_id: int | None = None) -> IngestReport:
        """Ingest files and folders. ``job_id``: the server job this run serves (else a CLI job).

        The run holds this process's lease in the catalog (``storage.leases``) throughout, so
        that processes on other machines know its job and the files it claims are in hand."""
        with take_lease(self.catalog):
            return self._ingest(paths, progress, job_id)

    def _ingest(self, paths, progress, job_id: int | None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(runner=self.runner)
        paths = list(paths)
        identity = self.space.identity
        check_vector_makers(self.catalog, self.space.name, identity, self.allow_mixed_encoders)
        files = discover(paths)
        # Load (or rebuild) the index before this run commits anything: loaded lazily after the
        # first video's catalog commit, it would be rebuilt with that video and then get it again.
        _ = self.store.index
        jobs, items = JobStore(self.catalog), ItemStore(self.catalog)
        own_job = job_id is None
        if own_job:
            job_id = jobs.create("cli", [str(p) for p in paths], self.space.name).id
            jobs.start(job_id, total=len(files))
        sweep_incomplete(self.catalog, items, jobs, self.thumbs)
        run_id = self.catalog.start_run(self.space.name, identity.fingerprint, identity.summary)
        writer = Writer(self.catalog, self.store, self.thumbs, self.space.name, items, report,
                        run_id, job_id, self.checkpoints,
                        self._progress(jobs, job_id, report, progress) if own_job else progress)
        planner = Planner(self.catalog, items, run_id, job_id, report)
        status, error, unsaved = FAILED, None, None
        try:
            self._run(planner.plan(files), writer, report)
            status = DONE
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            try:
                writer.checkpoint()
            except UnreachableError as exc:
                # the index's server went away (the run's own error, if it failed, says so
                # first): the run and its job are still recorded, and the index catches up
                # from the change log next time
                log.info("index not saved: %s", exc)
                if error is None:
                    status, error, unsaved = FAILED, f"{type(exc).__name__}: {exc}", exc
            report.wall_seconds = time.perf_counter() - started
            # the summary again: the models are loaded now, so it says what ran (lite's ONNX
            # Runtime may have fallen back to torch); how models run is not in the fingerprint.
            # Ray's models ran in its actors, which said what they ran (report.encoder).
            report.encoder = report.encoder or self.space.encoder_summary
            self.catalog.finish_run(run_id, ingested=report.ingested, skipped=report.skipped,
                                    failed=len(report.failed), snippets=report.snippets,
                                    media_seconds=report.media_seconds,
                                    wall_seconds=report.wall_seconds, encoder=report.encoder)
            if own_job:
                jobs.finish(job_id, status, error=error)
        if unsaved is not None:
            raise unsaved
        if writer.unfinished():
            log.error("files planned but never written: %s", [str(i.path) for i in writer.unfinished()])
        if self.store.outgrown():
            log.info("collection outgrew its %s index: rebuilding", self.store.index.manifest.factory)
            with report.timed("reindex"):
                self.store.rebuild()
        return report

    def _run(self, plan, writer: Writer, report: IngestReport) -> None:
        spec = ReadSpec.of(self.window, self.frames, self.space.frame_size, self.shots,
                           self.shot_threshold, self.hop)
        batch = self.batch_snippets or self.space.snippet_batch
        if self.runner == "ray":
            from indexer.runners.ray import RayOptions, run_ray
            run_ray(plan, SpaceSpec.of(self.space), spec, writer, report,
                    self.ray_options or RayOptions(), batch, cache_files=self.space.cache_files)
            return
        from indexer.runners.local import default_decoders, run_overlapped, run_sequential
        if self.runner == "sequential":
            run_sequential(plan, Encoder(space=self.space), spec, writer, report, batch)
            return
        run_overlapped(plan, Encoder(space=self.space), spec, writer, report, batch,
                       decoders=self.decoders or default_decoders(self.space))

    @staticmethod
    def _progress(jobs: JobStore, job_id: int, report: IngestReport, then):
        """Advance this run's own job row, then call the caller's progress callback."""
        def progress(path: Path, outcome: str) -> None:
            error = report.failed and next((f["error"] for f in reversed(report.failed)
                                            if f["path"] == str(path)), None)
            jobs.advance(job_id, str(path), outcome, error or None)
            if then:
                then(path, outcome)
        return progress
