"""The change log: every committed change to the vectors, numbered, for indexes to follow.

Table ``vector_changes`` (migration 4; its model ``VectorChange`` sits with the catalog's). ``Catalog.complete_video`` writes an ``add`` entry in
the same transaction as the video's rows, ``Catalog.delete_video`` a ``delete`` entry with the
delete, so the log never says more or less than the catalog holds. ``seq`` only grows
(database autoincrement). An index records the last ``seq`` it reflects; to catch up it
replays the entries after it. Replay is idempotent: for every video touched, the index drops
the video's id range and re-adds what the catalog holds now, so entries may be applied twice
or out of a writer's order without harm.

A ``delete`` entry has no space (it removes a video from every space).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from storage.catalog import ADD, DELETE, Catalog, VectorChange, record_change as record  # noqa: F401


@dataclass(frozen=True)
class Changes:
    """The entries after some ``seq``, reduced to what an index must do."""
    last_seq: int
    videos: np.ndarray  # ids of the videos touched, sorted, unique
    entries: int

    @property
    def empty(self) -> bool:
        return self.entries == 0


def last_seq(catalog: Catalog) -> int:
    """The newest seq, 0 for an empty log: one indexed max(), cheap enough to poll."""
    with catalog.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(VectorChange.seq))).scalar() or 0)


def since(catalog: Catalog, space: str, seq: int, upto: int | None = None) -> Changes:
    """Entries with ``seq < s <= upto`` (all newer ones without ``upto``) for ``space``."""
    cond = [VectorChange.seq > seq, sa.or_(VectorChange.space == space, VectorChange.space.is_(None))]
    if upto is not None:
        cond.append(VectorChange.seq <= upto)
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.select(VectorChange.seq, VectorChange.video_id)
                            .where(*cond).order_by(VectorChange.seq)).all()
        newest = upto if upto is not None else int(
            conn.execute(sa.select(sa.func.max(VectorChange.seq))).scalar() or 0)
    videos = np.unique(np.array([r[1] for r in rows], np.int64))
    return Changes(max(newest, seq), videos, len(rows))


@dataclass(frozen=True)
class VideoRows:
    """What the catalog holds now for some videos in one space, for an index to re-add."""
    ids: np.ndarray
    vectors: np.ndarray | None  # None where the catalog keeps no vectors
    start: np.ndarray
    end: np.ndarray
    present: np.ndarray  # the video ids that still have snippets


def video_rows(catalog: Catalog, space: str, video_ids, dim: int) -> VideoRows:
    """Snippets (and, where kept, embeddings) of ``video_ids`` as the catalog holds them now."""
    from storage.catalog import Embedding, Snippet, Video
    video_ids = [int(v) for v in video_ids]
    with catalog.engine.connect() as conn:
        q = (sa.select(Snippet.id, Snippet.start, Snippet.end, Embedding.vector)
             .join(Video, Video.id == Snippet.video_id)
             .outerjoin(Embedding, sa.and_(Embedding.snippet_id == Snippet.id,
                                           Embedding.space == space))
             .where(Snippet.video_id.in_(video_ids), Video.status == "ok")
             .order_by(Snippet.id))
        rows = conn.execute(q).all()
    from storage.ids import INDEX_BITS
    ids = np.array([r[0] for r in rows], np.int64)
    have = [r for r in rows if r[3] is not None]
    vectors = None
    if have and len(have) == len(rows):
        vectors = np.frombuffer(b"".join(r[3] for r in rows), np.float16).reshape(-1, dim) \
            .astype(np.float32)
    elif have:  # a mix (the setting changed between ingests): re-add only those with vectors
        ids = np.array([r[0] for r in have], np.int64)
        vectors = np.frombuffer(b"".join(r[3] for r in have), np.float16).reshape(-1, dim) \
            .astype(np.float32)
        rows = have
    start = np.array([r[1] for r in rows], np.float64)
    end = np.array([r[2] for r in rows], np.float64)
    return VideoRows(ids, vectors, start, end, np.unique(ids >> INDEX_BITS))
