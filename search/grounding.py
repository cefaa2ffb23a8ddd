"""Moments for a query: score every snippet of the top videos, then ground each video.

The index gives the best snippets; their videos, best first, are the candidates. All their
snippets are scored exactly (catalog vectors, ``storage.timelines``), because a moment's
extent depends on its neighbours' scores, which the top of the index does not hold. Each
video's scores are grounded (``search.moments.ground``) with a margin relative to the query's
score spread over those snippets; the moments of all candidate videos are ranked together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from search.moments import MARGIN, MAX_MOMENT, ground, spread
from search.shot_snap import snap_hits
from storage.timelines import Timeline

#: a video's moments listed with each of its hits (the page's timeline), at most this many
TIMELINE_MOMENTS = 20


def ranked_videos(candidates: list[dict]) -> list[int]:
    """Video ids in order of their best candidate snippet."""
    seen: dict[int, None] = {}
    for c in sorted(candidates, key=lambda c: -c["score"]):
        seen.setdefault(c["video_id"], None)
    return list(seen)


def video_moments(query: np.ndarray, lines: list[Timeline], *, exclude: set[int] | None = None,
                  rescore: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                  margin: float = MARGIN, max_length: float = MAX_MOMENT,
                  shots: dict[int, list[tuple[float, float]]] | None = None) -> list[dict]:
    """Every moment of the given videos for ``query``, best first, as hit dicts.

    A hit's ``snippet_id`` (and so its thumbnail and vector) is its peak snippet; ``start`` /
    ``end`` are the moment's; ``snippet_ids`` lists its snippets; ``video_moments`` lists the
    moments of the same video (best first) for a timeline. ``rescore(vectors, cosines)`` may
    replace the cosines (a reranker); ``exclude`` names snippets never shown. ``shots`` (video
    id -> its shots) snaps each such video's moments to them (``search.shot_snap``); a hit's
    ``snapped`` says whether its moment moved.
    """
    if not lines:
        return []
    vectors = np.concatenate([t.vectors for t in lines])
    scores = vectors @ query
    if rescore is not None:
        scores = np.asarray(rescore(vectors, scores), np.float64)
    ids = np.concatenate([t.ids for t in lines])
    if exclude:
        scores = np.where(np.isin(ids, list(exclude)), -np.inf, scores)
    width = margin * spread(scores)
    hits, offset = [], 0
    for line in lines:
        own = scores[offset:offset + len(line.ids)]
        offset += len(line.ids)
        found = []
        for m in ground(own, line.starts, line.ends, width, max_length):
            found.append({"snippet_id": int(line.ids[m.peak]), "video_id": line.video_id,
                          "video_path": line.path, "start": m.start, "end": m.end,
                          "score": m.score, "snippet_ids": line.ids[m.first:m.last + 1].tolist(),
                          "vector": line.vectors[m.peak], "snapped": False})
        if shots and shots.get(line.video_id):
            found = snap_hits(found, line.ids, line.starts, line.ends, own, shots[line.video_id], max_length)
        listing = [{"start": h["start"], "end": h["end"], "score": round(h["score"], 6),
                    "snippet_id": h["snippet_id"], "snapped": h["snapped"]} for h in found[:TIMELINE_MOMENTS]]
        for h in found:
            h["video_moments"] = listing
        hits += found
    return sorted(hits, key=lambda h: -h["score"])
