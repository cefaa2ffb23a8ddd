"""Every snippet of a few videos, in time order, with its vector: what grounding scores.

Search asks the index for the best snippets, then scores *all* snippets of the top videos
exactly (their vectors are in the catalog), so a moment can follow the query's scores across
its whole video, not only through the snippets that made the top of the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from storage.catalog import Catalog, Embedding, Snippet, Video


@dataclass(frozen=True)
class Timeline:
    video_id: int
    path: str
    ids: np.ndarray  # int64 snippet ids, in time order
    starts: np.ndarray  # float64 seconds
    ends: np.ndarray
    vectors: np.ndarray  # float32 (n, dim)
    window: float | None  # the video's snippet grid, as ingested (None: before migration 7)
    hop: float | None


def timelines(catalog: Catalog, video_ids: Iterable[int], space: str) -> dict[int, Timeline]:
    """The snippets (with vectors in ``space``) of each given video that has any."""
    video_ids = [int(v) for v in video_ids]
    if not video_ids:
        return {}
    with catalog.session() as s:
        rows = s.execute(
            sa.select(Snippet.video_id, Snippet.id, Snippet.start, Snippet.end, Embedding.vector)
            .join(Embedding, Embedding.snippet_id == Snippet.id)
            .where(Snippet.video_id.in_(video_ids), Embedding.space == space)
            .order_by(Snippet.video_id, Snippet.start, Snippet.id)).all()
        videos = {v.id: v for v in s.scalars(sa.select(Video).where(Video.id.in_(video_ids)))}
    by_video: dict[int, list] = {}
    for row in rows:
        by_video.setdefault(row[0], []).append(row)
    out = {}
    for vid, part in by_video.items():
        video = videos[vid]
        out[vid] = Timeline(
            vid, video.path, np.array([r[1] for r in part], np.int64),
            np.array([r[2] for r in part], np.float64), np.array([r[3] for r in part], np.float64),
            np.stack([np.frombuffer(r[4], dtype=np.float16) for r in part]).astype(np.float32),
            video.window_seconds, video.hop_seconds)
    return out
