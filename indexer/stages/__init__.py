"""Ingestion as four stages that a runner composes (see indexer/runners/).

plan (driver: discover, stat, hash, reserve ids) -> read (pure: path -> snippet rows) ->
encode (a callable class, model built once per worker) -> write (driver: idempotent per video).
"""

from indexer.stages.encode import Encoder, SpaceSpec
from indexer.stages.plan import FAIL, READ, SKIP, PlanItem, Planner, sweep_incomplete
from indexer.stages.read import ReadSpec, read_video
from indexer.stages.write import Checkpoints, Writer, checkpoint_index

__all__ = ["Encoder", "SpaceSpec", "PlanItem", "Planner", "sweep_incomplete", "READ", "SKIP",
           "FAIL", "ReadSpec", "read_video", "Checkpoints", "Writer",
           "checkpoint_index"]
