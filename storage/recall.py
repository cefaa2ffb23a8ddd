"""Recall@k of an approximate search against exact neighbours: one definition for the index's
tuning, the ANN benchmarks and the tests.

For each query, the share of its true top ``k`` found in its returned top ``k``, averaged.
``-1`` (FAISS's "no result") never counts. ``exclude`` gives, per query, an id left out of both
lists: a query drawn from the index itself finds itself first, which says nothing.

    >>> recall_at_k(np.array([[1, 2, 9], [6, 5, 4]]), np.array([[1, 2, 3], [4, 5, 6]]), 3)
    0.8333333333333333
"""

from __future__ import annotations

import numpy as np


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int, exclude: np.ndarray | None = None) -> float:
    """Mean over queries of |found top k & true top k| / |true top k|; 1.0 for no queries."""
    if k < 1:
        raise ValueError(f"recall@k needs k >= 1, got {k}")
    found, truth = np.asarray(found), np.asarray(truth)
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} result rows for {len(truth)} queries")
    skip = [None] * len(found) if exclude is None else list(np.asarray(exclude).tolist())
    shares = []
    for row, true_row, own in zip(found.tolist(), truth.tolist(), skip):
        got = [i for i in row if i >= 0 and i != own][:k]
        want = [i for i in true_row if i >= 0 and i != own][:k]
        shares.append(len(set(got) & set(want)) / max(len(want), 1))
    return float(np.mean(shares)) if shares else 1.0
