"""Windows inside shots (indexer.sampling.shot_windows): properties over random cut lists."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from indexer.sampling import (MIN_SHOT, frame_times, hold_limit, merge_shots, shot_windows,
                              split_shot)

durations = st.fractions(min_value=Fraction(1, 10), max_value=Fraction(200), max_denominator=1000)
windows = st.fractions(min_value=Fraction(1, 2), max_value=Fraction(10), max_denominator=100)
frame_counts = st.integers(1, 16)


@st.composite
def videos(draw):
    """(duration, cuts): cuts anywhere in (0, duration), flash cuts included."""
    duration = draw(durations)
    cuts = draw(st.lists(st.fractions(min_value=0, max_value=duration, max_denominator=1000),
                         max_size=30))
    return duration, cuts


def _kept(duration, cuts):
    return {a for a, _ in merge_shots(duration, cuts)[1:]}


@given(videos(), windows, frame_counts)
def test_windows_cover_the_video_in_order(video, window, frames):
    duration, cuts = video
    ws = shot_windows(duration, cuts, window, frames)
    assert ws[0].start == 0 and ws[-1].end == duration
    assert all(a.end == b.start for a, b in zip(ws, ws[1:]))
    assert [w.index for w in ws] == list(range(len(ws)))


@given(videos(), windows)
def test_no_window_crosses_a_kept_cut(video, window):
    duration, cuts = video
    kept = _kept(duration, cuts)
    for w in shot_windows(duration, cuts, window):
        assert not any(w.start < c < w.end for c in kept)
    starts = {w.start for w in shot_windows(duration, cuts, window)}
    assert kept <= starts  # every kept cut begins a window


@given(videos())
def test_only_flash_cuts_are_dropped_and_shots_are_not_flashes(video):
    duration, cuts = video
    shots = merge_shots(duration, cuts)
    bounds = {Fraction(0), duration} | {a for a, _ in shots}
    for c in cuts:
        if 0 < c < duration and c not in bounds:  # dropped: within a flash of a boundary
            assert min(abs(c - b) for b in bounds) < MIN_SHOT
    if len(shots) > 1:
        assert all(b - a >= MIN_SHOT for a, b in shots)
    assert {a for a, _ in shots[1:]} <= {Fraction(c) for c in cuts}


@given(videos(), windows)
def test_windows_are_near_equal_and_about_the_window_length(video, window):
    duration, cuts = video
    for a, b in merge_shots(duration, cuts):
        spans = split_shot(a, b, window)
        lengths = [e - s for s, e in spans]
        if b - a >= window * 3 / 2:  # long enough to split: every window within [3/4, 3/2) w
            assert all(window * 3 / 4 <= x < window * 3 / 2 for x in lengths)
        else:
            assert spans == [(a, b)]
        # full windows first, then the rest cut into equal parts
        full = next((i for i, x in enumerate(lengths) if x != window), len(lengths))
        assert len(set(lengths[full:])) <= 1


@given(durations, windows)
def test_long_shots_give_full_windows_while_more_than_the_hold_is_left(duration, window):
    spans = split_shot(Fraction(0), duration, window)
    for s, e in spans:
        if duration - s > hold_limit(window):  # the end is still far: a full window
            assert e - s == window
    rest = [e - s for s, e in spans if duration - s <= hold_limit(window)]
    assert rest and len(set(rest)) == 1  # what is left splits into equal windows


@given(videos(), windows, frame_counts)
def test_frames_are_exact_centres_inside_their_window(video, window, frames):
    duration, cuts = video
    for w in shot_windows(duration, cuts, window, frames):
        assert len(w.frame_times) == frames
        assert all(isinstance(t, Fraction) and w.start < t < w.end for t in w.frame_times)
        assert w.frame_times == frame_times(w.start, w.end, frames)


def test_worked_example_from_the_docstring():
    ws = shot_windows(20, [3, Fraction(17, 5), 13], 4)
    assert [(w.start, w.end) for w in ws] == [(0, 3), (3, 7), (7, 10), (10, 13),
                                              (13, Fraction(33, 2)), (Fraction(33, 2), 20)]
    assert ws[4].frame_times[0] == 13 + Fraction(7, 32)
    assert merge_shots(20, [3, Fraction(17, 5), 13]) == [(0, 3), (3, 13), (13, 20)]


def test_flash_at_the_start_and_at_the_end_join_their_neighbour():
    assert merge_shots(10, [Fraction(1, 2), 5, Fraction(19, 2)]) == [(0, 5), (5, 10)]
    assert merge_shots(Fraction(1, 2), [Fraction(1, 4)]) == [(0, Fraction(1, 2))]


def test_no_cut_is_the_fixed_grid_for_short_videos():
    assert [(w.start, w.end) for w in shot_windows(6, [], 4)] == [(0, 3), (3, 6)]
    assert [(w.start, w.end) for w in shot_windows(5, [], 4)] == [(0, 5)]


def test_no_float_drift_after_hours():
    ws = shot_windows(Fraction(3_600), [Fraction(1_800)], Fraction(1, 3))  # 10,800 windows
    assert ws[-1].end == 3_600 and any(w.start == 1_800 for w in ws)


@pytest.mark.parametrize("bad", [dict(duration=0, cuts=[]), dict(duration=5, cuts=[], window=0),
                                 dict(duration=5, cuts=[], frames=0)])
def test_bad_arguments_are_named(bad):
    with pytest.raises(ValueError, match="must be"):
        shot_windows(**bad)
