"""Every snippet of a few videos, in time order, with its vector: what grounding scores.

Search asks the index for the best snippets, then scores *all* snippets of the top videos
exactly, so a moment can follow the query's scores across its whole video, not only through
the snippets that made the top of the index. The vectors come from ``vectors_for`` (the
index store's: the catalog's float16 copies, or the backend's where the catalog keeps none).
A snippet whose start or end is not a finite number (a damaged catalog) has no place on a
time line and is left out: grounding and shot snapping need ordered, positive spans.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from storage.catalog import Catalog, Snippet, Video


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


def timelines(catalog: Catalog, video_ids: Iterable[int],
              vectors_for: Callable[[list[int]], tuple[np.ndarray, np.ndarray]]) -> dict[int, Timeline]:
    """The snippets (with their vectors) of each given video that has any."""
    video_ids = [int(v) for v in video_ids]
    if not video_ids:
        return {}
    with catalog.session() as s:
        rows = s.execute(
            sa.select(Snippet.video_id, Snippet.id, Snippet.start, Snippet.end)
            .where(Snippet.video_id.in_(video_ids))
            .order_by(Snippet.video_id, Snippet.start, Snippet.id)).all()
        videos = {v.id: v for v in s.scalars(sa.select(Video).where(Video.id.in_(video_ids)))}
    found, vectors = vectors_for([r[1] for r in rows]) if rows else (np.zeros(0, np.int64), None)
    vector_of = dict(zip(np.asarray(found).tolist(), vectors)) if len(found) else {}
    by_video: dict[int, list] = {}
    for row in rows:
        # a snippet without a vector in this space is not scored
        if row[1] in vector_of and math.isfinite(row[2]) and math.isfinite(row[3]):
            by_video.setdefault(row[0], []).append(row)
    out = {}
    for vid, part in by_video.items():
        video = videos[vid]
        out[vid] = Timeline(
            vid, video.path, np.array([r[1] for r in part], np.int64),
            np.array([r[2] for r in part], np.float64), np.array([r[3] for r in part], np.float64),
            np.stack([vector_of[r[1]] for r in part]).astype(np.float32),
            video.window_seconds, video.hop_seconds)
    return out
