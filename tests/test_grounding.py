"""Score-aware grounding (search.moments.ground): hand-made score sequences and properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from search.moments import Moment, ground, spread, tile


def grid(n: int, window: float = 4.0, hop: float | None = None, duration: float | None = None):
    hop = hop or window
    starts = [i * hop for i in range(n)]
    ends = [s + window for s in starts]
    if duration is not None:
        ends[-1] = duration
    return starts, ends


def test_one_peak_grows_to_its_close_neighbours_only():
    scores = [0.1, 0.2, 0.8, 0.75, 0.3, 0.1]
    (best, *rest) = ground(scores, *grid(6), margin=0.1)
    assert (best.first, best.last, best.peak) == (2, 3, 2)
    assert (best.start, best.end, best.score) == (8.0, 16.0, 0.8)
    assert all(m.score < best.score for m in rest)


def test_two_peaks_in_one_video_give_two_moments_best_first():
    scores = [0.9, 0.85, 0.2, 0.1, 0.6, 0.62, 0.2]
    moments = ground(scores, *grid(7), margin=0.1)
    assert [(m.first, m.last) for m in moments[:2]] == [(0, 1), (4, 5)]
    assert moments[1].peak == 5 and moments[1].score == 0.62


def test_plateau_is_one_moment_up_to_the_maximum_length():
    scores = [0.5] * 10
    moments = ground(scores, *grid(10), margin=0.01, max_length=16.0)
    assert moments[0].end - moments[0].start == 16.0
    assert sum(m.last - m.first + 1 for m in moments) == 10  # the rest in further moments
    assert ground([0.5] * 3, *grid(3), margin=0.01)[0] == Moment(0, 2, 0, 0.5, 0.0, 12.0)


def test_lengths_must_agree():
    import pytest
    with pytest.raises(ValueError, match="3 scores but 2 snippet"):
        ground([0.1, 0.2, 0.3], [0.0, 4.0], [4.0, 8.0], margin=0.1)


def test_single_snippet():
    assert ground([0.3], [0.0], [2.5], margin=0.1) == [Moment(0, 0, 0, 0.3, 0.0, 2.5)]
    assert ground([], [], [], margin=0.1) == []


def test_noise_does_not_swallow_the_video_when_margin_is_tight():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.2, 0.05, 30)
    scores[12:14] = 0.9
    best = ground(scores, *grid(30), margin=0.5 * spread(scores))[0]
    assert (best.first, best.last) == (12, 13)


def test_excluded_snippet_is_never_a_peak_and_stops_growth():
    best = ground([0.5, float("-inf"), 0.9, 0.85], *grid(4), margin=1.0)[0]
    assert (best.first, best.last) == (2, 3)


def test_overlapping_windows_share_the_time_line():
    starts, ends = grid(5, window=4.0, hop=2.0)  # [0,4) [2,6) [4,8) [6,10) [8,12)
    lo, hi = tile(starts, ends)
    assert lo.tolist() == [0, 3, 5, 7, 9] and hi.tolist() == [3, 5, 7, 9, 12]
    moments = ground([0.1, 0.9, 0.1, 0.8, 0.1], starts, ends, margin=0.05)
    assert [(m.start, m.end) for m in moments[:2]] == [(3.0, 5.0), (7.0, 9.0)]


@st.composite
def videos(draw):
    n = draw(st.integers(1, 40))
    hop = draw(st.sampled_from([1.0, 2.0, 4.0]))
    window = draw(st.sampled_from([w for w in (2.0, 4.0, 8.0) if w >= hop]))
    starts, _ = grid(n, window, hop)
    duration = starts[-1] + draw(st.floats(0.5, window))  # windows end at the video's end
    ends = [min(s + window, duration) for s in starts]
    scores = draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=n, max_size=n))
    margin = draw(st.floats(0, 2))
    max_length = draw(st.floats(1, 30))
    return scores, starts, ends, margin, max_length


@given(videos())
def test_properties_peak_inside_no_overlap_within_video(case):
    scores, starts, ends, margin, max_length = case
    moments = ground(scores, starts, ends, margin, max_length)
    assert moments, "a video with snippets has at least one moment"
    lo, hi = tile(starts, ends)
    for m in moments:
        assert m.first <= m.peak <= m.last
        assert m.start <= lo[m.peak] and hi[m.peak] <= m.end  # a moment contains its peak
        assert 0 <= m.start < m.end <= ends[-1]  # within its video
        assert m.score == scores[m.peak] == max(scores[m.first:m.last + 1])
        assert m.end - m.start <= max(max_length, hi[m.peak] - lo[m.peak]) + 1e-9
    spans = sorted((m.start, m.end) for m in moments)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # moments of one video do not overlap
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
