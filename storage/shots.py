"""Each video's shots (table ``shots``, migration 6): start, end, the detector and its threshold.

Written at ingestion when a shot detector ran (``--shots transnetv2|scenedetect``), replaced
when a video is ingested again, deleted with the video (foreign key cascade). A video ingested
with ``--shots none`` has no rows: its snippets follow the fixed grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

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
        s.execute(sa.delete(ShotRow).where(ShotRow.video_id == video_id))
        s.add_all(ShotRow(video_id=video_id, idx=i, start=float(a), end=float(b), detector=detector,
                          threshold=threshold) for i, (a, b) in enumerate(shots))


def shots_of(catalog: Catalog, video_id: int) -> list[Shot]:
    """A video's shots in order; empty if it was ingested without a shot detector."""
    with catalog.session() as s:
        rows = s.scalars(sa.select(ShotRow).where(ShotRow.video_id == video_id).order_by(ShotRow.idx))
        return [Shot(r.idx, r.start, r.end, r.detector, r.threshold) for r in rows]
