from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from indexer.sampling import frame_times, min_tail, snippet_windows

# long videos are covered by test_no_float_drift_after_hours; properties need many cases, fast
durations = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(300), max_denominator=1000)
windows = st.fractions(min_value=Fraction(1, 2), max_value=Fraction(30), max_denominator=100)


@given(durations, windows, st.integers(1, 16))
def test_windows_tile_the_video_exactly(duration, window, frames):
    ws = snippet_windows(duration, window, frames)
    assert ws[0].start == 0 and ws[-1].end == duration
    for a, b in zip(ws, ws[1:]):
        assert a.end == b.start
    assert [w.index for w in ws] == list(range(len(ws)))


@given(durations, windows)
def test_full_windows_then_one_tail_that_is_not_too_short(duration, window):
    ws = snippet_windows(duration, window)
    assert all(w.duration == window for w in ws[:-1])
    last = ws[-1].duration
    if len(ws) > 1:
        assert min_tail(window) <= last < window + min_tail(window)
    else:
        assert last == duration


@given(durations, windows, st.integers(1, 16))
def test_frames_are_ordered_inside_their_window(duration, window, frames):
    for w in snippet_windows(duration, window, frames):
        assert len(w.frame_times) == frames
        assert all(w.start < t < w.end for t in w.frame_times)
        assert list(w.frame_times) == sorted(set(w.frame_times))


def test_worked_example_from_the_docstring():
    ws = snippet_windows(10, 4, 8)
    assert [(w.start, w.end) for w in ws] == [(0, 4), (4, 8), (8, 10)]
    assert ws[0].frame_times[:2] == (Fraction(1, 4), Fraction(3, 4))
    assert ws[2].frame_times[0] == Fraction(65, 8)
    assert [(w.start, w.end) for w in snippet_windows(Fraction(25, 2), 4)] == [(0, 4), (4, 8), (8, Fraction(25, 2))]
    assert len(snippet_windows(Fraction(3, 2), 4)) == 1


def test_no_float_drift_after_hours():
    ws = snippet_windows(Fraction(3_600), Fraction(1, 3))  # 1 h in 1/3 s windows: 10,800 of them
    assert ws[-1].start == Fraction(10_799, 3)
    assert frame_times(ws[-1].start, ws[-1].end, 2)[1] - ws[-1].start == Fraction(1, 4)


@pytest.mark.parametrize("bad", [dict(duration=0), dict(duration=-1), dict(duration=5, window=0),
                                 dict(duration=5, frames=0)])
def test_bad_arguments_are_named(bad):
    with pytest.raises(ValueError, match="must be"):
        snippet_windows(**bad)
