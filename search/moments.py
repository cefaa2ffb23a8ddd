"""From snippet scores to moments: ground them, collapse duplicates, group by video.

``ground`` finds the moments of one video from the query's scores of all its snippets (local
peaks, grown while the score stays near the peak); ``merge_adjacent`` is the older rule (merge
neighbours that both rank near the top), kept for ``vidsonar bench moments``. All functions
are pure over score sequences or lists of hits (dicts with ``snippet_id``, ``video_id``,
``start``, ``end``, ``score``) so they can be tested on hand-made cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

TOUCH = 1e-6  # seconds: windows share their boundary exactly, floats may differ in the last bit


def merge_adjacent(hits: list[dict]) -> list[dict]:
    """Hits of one video whose time ranges touch or overlap become one moment.

    The moment spans the run, scores as its best snippet, is represented by that snippet
    (``snippet_id``, ``thumbnail``) and lists every snippet in ``snippet_ids``.
    """
    by_video: dict[int, list[dict]] = {}
    for hit in hits:
        by_video.setdefault(hit["video_id"], []).append(hit)
    moments = []
    for group in by_video.values():
        group.sort(key=lambda h: h["start"])
        run = [group[0]]
        for hit in group[1:]:
            if hit["start"] <= max(h["end"] for h in run) + TOUCH:
                run.append(hit)
            else:
                moments.append(_moment(run))
                run = [hit]
        moments.append(_moment(run))
    return sorted(moments, key=lambda m: -m["score"])


def _moment(run: list[dict]) -> dict:
    best = max(run, key=lambda h: h["score"])
    return {**best, "start": min(h["start"] for h in run), "end": max(h["end"] for h in run),
            "snippet_ids": sorted(h["snippet_id"] for h in run)}


def collapse_duplicates(hits: list[dict], vector_of: Callable[[int], np.ndarray],
                        threshold: float = 0.97) -> list[dict]:
    """Drop hits from other videos whose vector nearly equals a better hit's (the same footage
    ingested twice, a re-encode); the kept hit lists them in ``duplicates``."""
    kept: list[dict] = []
    kept_vectors: list[np.ndarray] = []
    for hit in sorted(hits, key=lambda h: -h["score"]):
        v = vector_of(hit["snippet_id"])
        twin = next((i for i, (k, kv) in enumerate(zip(kept, kept_vectors))
                     if k["video_id"] != hit["video_id"] and float(kv @ v) >= threshold), None)
        if twin is None:
            kept.append({**hit, "duplicates": list(hit.get("duplicates", []))})
            kept_vectors.append(v)
        else:
            kept[twin]["duplicates"].append(hit["snippet_id"])
    return kept


def best_per_video(hits: list[dict]) -> list[dict]:
    seen: set[int] = set()
    out = []
    for hit in sorted(hits, key=lambda h: -h["score"]):
        if hit["video_id"] not in seen:
            seen.add(hit["video_id"])
            out.append(hit)
    return out


# --- grounding: moments that follow the query's scores ---------------------------------------
#: A neighbour joins a moment while its score stays within MARGIN x (the query's score spread)
#: of the moment's peak. The spread is the standard deviation of the query's scores over every
#: snippet of the candidate videos, so the margin scales with how peaked the query's evidence is
#: and is comparable across spaces. Tuned on the tuning split of the shipped moment set
#: (samples.moments, ``vidsonar bench moments --tune``): see README "Ranking, moments, summaries".
MARGIN = 0.5
#: seconds: a moment is not extended past this length (a scene, not a whole reel)
MAX_MOMENT = 16.0


@dataclass(frozen=True)
class Moment:
    """Snippets ``first..last`` (inclusive, indices in time order) of one video around ``peak``."""
    first: int
    last: int
    peak: int
    score: float
    start: float
    end: float


def tile(starts: Sequence[float], ends: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Each snippet's share of the time line, so that overlapping windows do not make
    overlapping moments: the boundary between snippets i and i+1 is the midpoint of their
    overlap (of ``start[i+1]`` and ``end[i]``). Non-overlapping windows keep their own bounds;
    4 s windows every 2 s get their central 2 s. The shares tile [start[0], end[-1])."""
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    if len(starts) == 0:
        return starts, ends
    cuts = (starts[1:] + ends[:-1]) / 2
    return np.concatenate([starts[:1], cuts]), np.concatenate([cuts, ends[-1:]])


def spread(scores: np.ndarray) -> float:
    """The query's score spread: the standard deviation of its finite scores (0 if fewer than 2)."""
    s = np.asarray(scores, np.float64)
    s = s[np.isfinite(s)]
    return float(s.std()) if len(s) > 1 else 0.0


def ground(scores: Sequence[float], starts: Sequence[float], ends: Sequence[float], margin: float,
           max_length: float = MAX_MOMENT) -> list[Moment]:
    """Moments of one video for one query, best first (temporal non-maximum suppression).

    ``scores`` are the query's scores of the video's snippets in time order (``-inf`` or NaN:
    a snippet that may not be shown, e.g. the example itself). Seeds are local peaks (a score
    >= both neighbours), taken best first; each grows one neighbour at a time, the better side
    first, while the neighbour is free, scores in [peak - ``margin``, peak] and the moment stays within
    ``max_length`` seconds; its snippets are then taken, so moments never overlap.
    """
    s = np.asarray(scores, np.float64)
    n = len(s)
    if not n == len(starts) == len(ends):
        raise ValueError(f"{n} scores but {len(starts)} snippet starts and {len(ends)} ends")
    if n == 0:
        return []
    lo, hi = tile(starts, ends)
    free = np.isfinite(s)
    padded = np.concatenate([[-np.inf], np.where(free, s, -np.inf), [-np.inf]])
    peak = free & (padded[1:-1] >= padded[:-2]) & (padded[1:-1] >= padded[2:])
    moments = []
    for p in np.argsort(-np.where(free, s, -np.inf), kind="stable"):
        if not (peak[p] and free[p]):
            continue
        floor, a, b = s[p] - margin, p, p

        def joins(i: int) -> bool:  # free, close to the peak, and not better than it
            return bool(free[i] and floor <= s[i] <= s[p])

        while True:
            left = a - 1 if a > 0 and joins(a - 1) and hi[b] - lo[a - 1] <= max_length else None
            right = b + 1 if b < n - 1 and joins(b + 1) and hi[b + 1] - lo[a] <= max_length else None
            if left is None and right is None:
                break
            if right is None or (left is not None and s[left] >= s[right]):
                a = left
            else:
                b = right
        free[a:b + 1] = False
        moments.append(Moment(int(a), int(b), int(p), float(s[p]), float(lo[a]), float(hi[b])))
    return moments
