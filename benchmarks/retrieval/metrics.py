"""Retrieval and embedding-space metrics of the paper's Table 2 (Section 3.1).

Inputs are one vision vector per video and one text vector per caption, as the space returns
them (unit-norm here; the paper's SONAR text statistics were taken on raw SONAR vectors,
which is why its text traces exceed 1). All statistics are computed in float64.

- ``ranks``: the rank of each caption's own video among all videos, by cosine similarity.
  Ties count against the caption (rank = 1 + videos scoring >= the true one, itself
  excluded), so a collapsed model that scores everything alike gets the worst rank, not R@1=1.
- ``recall_at_k``: share of captions whose video ranks <= k. ``mrr``: mean of 1 / rank.
- ``alignment_consistency`` (AC): for n paired items with vision vectors V and text vectors T,
  the Spearman rank correlation between the n(n-1)/2 off-diagonal entries (i < j) of the
  vision-vision cosine matrix V V^T and the same entries of the text-text matrix T T^T.
  1 means the two modalities order every pair of items alike; 0 means no relation.
- ``cov_trace``: trace of the sample covariance (ddof=1) of a set of vectors: their spread.
- ``cov_logdet``: log-determinant of that covariance plus ``eps`` times the identity: the
  log-volume of the embedding ellipsoid. The ridge keeps it finite when n <= dim (the
  covariance is then singular); compare logdets only between runs of the same n, dim and eps.
"""

from __future__ import annotations

import numpy as np

#: ridge added to the covariance diagonal before its log-determinant
LOGDET_EPS = 1e-6
KS = (1, 5, 10)


def similarity(text: np.ndarray, vision: np.ndarray) -> np.ndarray:
    """(captions, videos) cosine similarities."""
    t, v = _unit(text), _unit(vision)
    return t @ v.T


def ranks(sims: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of ``truth[i]`` in row i of ``sims`` (captions x videos), ties counted against."""
    sims = np.asarray(sims, np.float64)
    truth = np.asarray(truth, np.int64)
    own = sims[np.arange(len(sims)), truth][:, None]
    return (sims >= own).sum(axis=1).astype(np.int64)  # counts the true video itself once


def recall_at_k(r: np.ndarray, k: int) -> float:
    return float((np.asarray(r) <= k).mean()) if len(r) else float("nan")


def mrr(r: np.ndarray) -> float:
    return float((1.0 / np.asarray(r, np.float64)).mean()) if len(r) else float("nan")


def alignment_consistency(vision: np.ndarray, text: np.ndarray) -> float:
    """Spearman correlation of the pairwise similarity structure of paired items (see module doc)."""
    from scipy.stats import spearmanr
    v, t = _unit(vision), _unit(text)
    if len(v) != len(t):
        raise ValueError(f"AC needs paired items: {len(v)} vision vs {len(t)} text vectors")
    if len(v) < 3:
        return float("nan")  # fewer than 3 pairs of items: a correlation of 1 or 0 points
    i, j = np.triu_indices(len(v), k=1)
    sv, st = (v @ v.T)[i, j], (t @ t.T)[i, j]
    if np.ptp(sv) == 0 or np.ptp(st) == 0:
        return float("nan")  # a constant similarity structure has no ranks to correlate
    return float(spearmanr(sv, st).statistic)


def covariance(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))


def cov_trace(x: np.ndarray) -> float:
    return float(np.trace(covariance(x)))


def cov_logdet(x: np.ndarray, eps: float = LOGDET_EPS) -> float:
    c = covariance(x)
    sign, logdet = np.linalg.slogdet(c + eps * np.eye(len(c)))
    return float(logdet) if sign > 0 else float("-inf")


def retrieval_metrics(text: np.ndarray, vision: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Text->video R@1/5/10 and MRR of captions ``text`` against the ``vision`` gallery."""
    r = ranks(similarity(text, vision), truth)
    out = {f"R@{k}": recall_at_k(r, k) for k in KS}
    out["MRR"] = mrr(r)
    out["queries"] = float(len(r))
    return out


def space_metrics(vision: np.ndarray, text: np.ndarray) -> dict[str, float]:
    """AC, trace and logdet of paired vision/text vectors (row i of each is one item)."""
    return {"AC": alignment_consistency(vision, text),
            "V.trace": cov_trace(vision), "V.logdet": cov_logdet(vision),
            "T.trace": cov_trace(text), "T.logdet": cov_logdet(text)}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
