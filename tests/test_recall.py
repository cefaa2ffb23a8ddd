"""recall@k by hand: the one definition tuning, benchmarks and tests share."""

from __future__ import annotations

import numpy as np
import pytest

from storage.recall import recall_at_k


def test_recall_by_hand():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(np.array([[1, 2, 9], [6, 5, 4]]), truth, 3) == pytest.approx(5 / 6)
    assert recall_at_k(np.array([[1, 2, 9], [6, 5, 4]]), truth, 1) == 0.5
    assert recall_at_k(np.array([[-1, -1, -1], [4, -1, -1]]), truth, 3) == pytest.approx(1 / 6)


def test_a_query_from_the_index_does_not_count_itself():
    # query 7 finds itself first; its true neighbours besides itself are 8 and 9
    found, truth = np.array([[7, 8, 1, 9]]), np.array([[7, 8, 9, 2]])
    assert recall_at_k(found, truth, 2, exclude=np.array([7])) == 0.5  # {8, 1} vs {8, 9}
    assert recall_at_k(found, truth, 3, exclude=np.array([7])) == pytest.approx(2 / 3)  # {8, 1, 9} vs {8, 9, 2}
    assert recall_at_k(found, truth, 2) == 1.0  # {7, 8} both ways when the query is kept


def test_bad_arguments():
    with pytest.raises(ValueError, match="k >= 1"):
        recall_at_k(np.zeros((1, 3)), np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="2 result rows for 1 queries"):
        recall_at_k(np.zeros((2, 3)), np.zeros((1, 3)), 1)
    assert recall_at_k(np.zeros((0, 3)), np.zeros((0, 3)), 3) == 1.0
