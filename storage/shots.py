"""Each video's shots (table ``shots``, migration 6): start, end, the detector and its threshold.

Written at ingestion when a shot detector ran (``--shots transnetv2|scenedetect``), replaced
when a video is ingested again, deleted with the video (foreign key cascade). A video ingested
with ``--shots none`` has no rows: its snippets follow the fixed grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.catalog import Base, Catalog


class ShotRow(Base):
    __tablename__ = "shots"
    video_id: Mapped[int] = mapped_column(sa.ForeignKey("videos.id", ondelete="CASCADE"),
                                          primary_key=True)
    idx: Mapped[int] = mapped_column(primary_key=True)
    start: Mapped[float]
    end: Mapped[float]
    detector: Mapped[str] = mapped_column(sa.String(32))
    threshold: Mapped[float | None]


@dataclass(frozen=True)
class Shot:
    index: int
    start: float
    end: float
    detector: str
    threshold: float | None


def record_shots(catalog: Catalog, video_id: int, shots: Sequence[tuple[float, float]],
                 detector: str, threshold: float | None) -> None:
    """Replace a video's shots with ``shots`` ([start, end) seconds, in order)."""
    with catalog.session() as s:
        write_shots(s, video_id, shots, detector, threshold)


def write_shots(session: Session, video_id: int, shots: Sequence[tuple[float, float]],
                detector: str, threshold: float | None) -> None:
    """``record_shots`` in the caller's transaction (the writer's ``complete_video``)."""
    session.execute(sa.delete(ShotRow).where(ShotRow.video_id == video_id))
    session.add_all(ShotRow(video_id=video_id, idx=i, start=float(a), end=float(b), detector=detector,
                            threshold=threshold) for i, (a, b) in enumerate(shots))


def shots_of(catalog: Catalog, video_id: int) -> list[Shot]:
    """A video's shots in order; empty if it was ingested without a shot detector."""
    with catalog.session() as s:
        rows = s.scalars(sa.select(ShotRow).where(ShotRow.video_id == video_id).order_by(ShotRow.idx))
        return [Shot(r.idx, r.start, r.end, r.detector, r.threshold) for r in rows]


def shot_spans(catalog: Catalog, video_ids: Sequence[int]) -> dict[int, list[tuple[float, float]]]:
    """The shots [start, end) of each given video that has any, in order (one query: search
    snaps the moments of its candidate videos to them).

    A shot whose start or end is not a finite number (a damaged row: PostgreSQL keeps NaN,
    either database infinities) is left out: it has no place on the time line, and one
    reaching to infinity would hold every moment and hide the real shots from snapping.
    """
    ids = [int(v) for v in video_ids]
    if not ids:
        return {}
    out: dict[int, list[tuple[float, float]]] = {}
    with catalog.session() as s:
        rows = s.execute(sa.select(ShotRow.video_id, ShotRow.start, ShotRow.end)
                         .where(ShotRow.video_id.in_(ids)).order_by(ShotRow.video_id, ShotRow.idx))
        for vid, start, end in rows:
            if math.isfinite(start) and math.isfinite(end):
                out.setdefault(vid, []).append((start, end))
    return out
