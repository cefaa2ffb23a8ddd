"""Reranking by alignment consistency (AC), after the paper's AC metric.

The paper measures alignment consistency as the rank correlation between the similarity
structure of two embeddings. For one query ``q`` and one candidate snippet ``v``:

    AC(q, v) = Spearman( [q . r for r in R],  [v . r for r in R] )

where ``R`` is a reference set: either the top-K candidates themselves (``"candidates"``; the
candidate ``v`` is left out of its own reference set) or a fixed bank of concept anchors the
space provides (``"anchors"``; for ``lite``, its 1000 centred label-prompt embeddings). A
candidate whose neighbourhood ranks the references the way the query does is consistent with
it even when its raw cosine is noisy. The final score blends the two:

    score(q, v) = cos(q, v) + weight * AC(q, v)

The round-trip variant needs a text decoder (SONAR): decode ``v`` into the query's language,
re-encode the text, and score ``cos(q, encode(decode(v)))`` in place of AC.
"""

from __future__ import annotations

import numpy as np

RERANKERS = ("none", "ac-candidates", "ac-anchors", "roundtrip")


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks of a 1-d array (0-based), ties given their average rank."""
    x = np.asarray(x, np.float64)
    ranks = np.empty(len(x), np.float64)
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x), dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(values) == len(x):
        return ranks
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-d arrays (0 when either is constant)."""
    ra, rb = rankdata(np.asarray(a, np.float64)), rankdata(np.asarray(b, np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def alignment_consistency(query: np.ndarray, candidates: np.ndarray,
                          references: np.ndarray | None = None) -> np.ndarray:
    """AC of each candidate with the query; ``references`` None means the candidates themselves."""
    candidates = np.atleast_2d(candidates)
    n = len(candidates)
    if references is None:
        if n < 3:
            return np.zeros(n)
        sims_q = candidates @ query
        sims_v = candidates @ candidates.T
        keep = ~np.eye(n, dtype=bool)
        return np.array([spearman(sims_q[keep[i]], sims_v[i][keep[i]]) for i in range(n)])
    sims_q = references @ query
    sims_v = candidates @ references.T
    return np.array([spearman(sims_q, row) for row in sims_v])


def blend(cosines: np.ndarray, consistency: np.ndarray, weight: float) -> np.ndarray:
    return np.asarray(cosines, np.float64) + weight * np.asarray(consistency, np.float64)
