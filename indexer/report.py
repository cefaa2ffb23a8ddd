"""What an ingestion run reports: counts, failures, footage seconds and time per stage."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class IngestReport:
    """Counts of one run. ``stage_seconds`` is busy time per stage: with an overlapping
    runner, stages run at once, so they add up to more than ``wall_seconds``."""
    ingested: int = 0
    skipped: int = 0
    snippets: int = 0
    failed: list[dict] = field(default_factory=list)
    media_seconds: float = 0.0
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    hashed: int = 0  # files whose bytes were hashed (a resumed run skips unchanged finished files)
    replaced: int = 0  # videos deleted because their path holds other bytes now (Writer.retire)
    runner: str = "local"
    startup_seconds: float = 0.0  # bringing the runner up (a Ray cluster), before any file
    #: what made the vectors, in words, as it ran (``ConceptSpace.encoder_summary`` once loaded;
    #: on Ray, what the encoder actors reported)
    encoder: str = ""
    #: Ray: the driver's node and each node that worked (``indexer.runners.ray``)
    nodes: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def realtime_factor(self) -> float:
        """Seconds of footage ingested per second of wall time."""
        return self.media_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def add_time(self, stage: str, seconds: float) -> None:
        with self._lock:  # stages run in several threads
            self.stage_seconds[stage] += seconds

    def timed(self, stage: str) -> "_Timed":
        return _Timed(self, stage)

    def to_json(self) -> dict:
        return {"ingested": self.ingested, "skipped": self.skipped, "snippets": self.snippets,
                "failed": self.failed, "media_seconds": round(self.media_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3),
                "x_realtime": round(self.realtime_factor, 2),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "hashed": self.hashed, "replaced": self.replaced, "runner": self.runner,
                "startup_seconds": round(self.startup_seconds, 3), "encoder": self.encoder,
                "nodes": self.nodes}


class _Timed:
    def __init__(self, report: IngestReport, stage: str):
        self.report, self.stage = report, stage

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.report.add_time(self.stage, time.perf_counter() - self.t)
