"""Table 2 metrics on cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.retrieval import metrics


def test_ranks_recall_and_mrr_by_hand():
    sims = np.array([[0.9, 0.1, 0.2],   # own video first
                     [0.5, 0.4, 0.3],   # own video second
                     [0.2, 0.2, 0.1]])  # own video last
    r = metrics.ranks(sims, np.array([0, 1, 2]))
    assert r.tolist() == [1, 2, 3]
    assert metrics.recall_at_k(r, 1) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(r, 2) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(r, 10) == 1.0
    assert metrics.mrr(r) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_ties_count_against_the_caption():
    # a collapsed model scoring every video alike must not get R@1 = 1
    assert metrics.ranks(np.array([[0.5, 0.5, 0.5]]), np.array([0])).tolist() == [3]


def test_retrieval_metrics_from_vectors():
    vision = np.eye(3)
    text = np.array([[1.0, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.2, 1.0]])
    m = metrics.retrieval_metrics(text, vision, np.array([0, 1, 2]))
    # caption 1 is nearest video 2 (rank 3: its own video scores 0, tied with video 0)
    assert m["R@1"] == pytest.approx(2 / 3) and m["R@5"] == 1.0
    assert m["MRR"] == pytest.approx((1 + 1 / 3 + 1) / 3)


def _unit(deg):
    return np.array([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in deg])


def test_alignment_consistency_by_hand():
    # vision at 0, 30, 100 degrees: pair cosines (01, 02, 12) = cos 30, cos 100, cos 70 -> ranks 3, 1, 2
    # text at 0, 50, 80 degrees:   pair cosines = cos 50, cos 80, cos 30            -> ranks 2, 1, 3
    # Spearman: 1 - 6 * (1 + 0 + 1) / (3 * (9 - 1)) = 0.5
    assert metrics.alignment_consistency(_unit([0, 30, 100]), _unit([0, 50, 80])) == pytest.approx(0.5)
    assert metrics.alignment_consistency(_unit([0, 30, 100]), _unit([0, 30, 100])) == pytest.approx(1.0)
    # scale does not matter: similarities are cosines
    assert metrics.alignment_consistency(3 * _unit([0, 30, 100]), _unit([0, 50, 80])) == pytest.approx(0.5)


def test_alignment_consistency_degenerate_cases():
    assert math.isnan(metrics.alignment_consistency(_unit([0, 10]), _unit([0, 20])))
    assert math.isnan(metrics.alignment_consistency(np.ones((4, 2)), _unit([0, 10, 20, 30])))
    with pytest.raises(ValueError):
        metrics.alignment_consistency(_unit([0, 10, 20]), _unit([0, 10]))


def test_trace_and_logdet_by_hand():
    x = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], float)
    # per dimension: deviations +-1, sum of squares 4, / (4 - 1) -> 4/3; the dimensions are uncorrelated
    assert metrics.cov_trace(x) == pytest.approx(8 / 3)
    assert metrics.cov_logdet(x, eps=0) == pytest.approx(2 * math.log(4 / 3))
    assert metrics.cov_logdet(x) == pytest.approx(2 * math.log(4 / 3 + metrics.LOGDET_EPS))


def test_logdet_of_too_few_points_is_the_ridge():
    x = np.array([[1.0, 0, 0], [0, 1.0, 0]])  # 2 points in 3-D: covariance of rank 1
    assert metrics.cov_logdet(x, eps=0) == float("-inf")
    # eigenvalues 1 (along the difference: deviations +-0.5 in two coordinates, /1) and 0, 0
    assert metrics.cov_logdet(x, eps=1e-6) == pytest.approx(math.log(1 + 1e-6) + 2 * math.log(1e-6))


def test_space_metrics_names():
    v, t = _unit([0, 30, 100]), _unit([0, 50, 80])
    assert set(metrics.space_metrics(v, t)) == {"AC", "V.trace", "V.logdet", "T.trace", "T.logdet"}
