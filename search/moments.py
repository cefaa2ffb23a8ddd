"""From snippet hits to moments: merge neighbours, collapse duplicates, group by video.

All functions are pure over lists of hits (dicts with ``snippet_id``, ``video_id``, ``start``,
``end``, ``score``) so they can be tested on hand-made cases.
"""

from __future__ import annotations

from collections.abc import Callable

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
