"""Overlapping snippets: the pure grid (snippet_windows hop) and the decoder that follows it."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from indexer.sampling import overlap_factor, snippet_windows

durations = st.fractions(min_value=Fraction(1, 100), max_value=Fraction(120), max_denominator=100)


@given(durations, st.sampled_from([(Fraction(4), Fraction(2)), (Fraction(4), Fraction(1)), (Fraction(2), Fraction(1))]))
def test_windows_start_every_hop_and_sample_the_plain_instants(duration, grid):
    window, hop = grid
    ws = snippet_windows(duration, window, 8, hop=hop)
    assert ws[0].start == 0 and ws[-1].end == duration
    assert [w.index for w in ws] == list(range(len(ws)))
    if len(ws) > 1:
        assert all(b.start - a.start == hop for a, b in zip(ws, ws[1:]))
        assert all(w.duration == window for w in ws[:-1])
    for w in ws:
        assert len(w.frame_times) == 8 and all(w.start < t < w.end for t in w.frame_times)
    # a full window that is also on the plain grid samples the instants the plain grid samples
    plain = {x.start: x for x in snippet_windows(duration, window, 8)}
    for w in ws[:-1]:
        if w.start in plain and plain[w.start].duration == window:
            assert w.frame_times == plain[w.start].frame_times


def test_example_from_the_docstring():
    assert [(w.start, w.end) for w in snippet_windows(10, 4, hop=2)] == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert [(w.start, w.end) for w in snippet_windows(3, 4, hop=2)] == [(0, 3)]  # shorter than a window
    assert snippet_windows(10, 4, hop=4) == snippet_windows(10, 4)


def test_grids_that_cannot_be_are_refused():
    assert overlap_factor(Fraction(4), Fraction(2)) == 2
    for hop in (Fraction(3), Fraction(0), Fraction(5)):
        with pytest.raises(ValueError, match="hop"):
            overlap_factor(Fraction(4), hop)
    with pytest.raises(ValueError, match="divisible"):
        overlap_factor(Fraction(4), Fraction(4, 3), frames=8)


def test_decoded_overlapping_windows_follow_the_grid(tmp_path):
    from tests.conftest import moving_frames
    from indexer.decode import iter_snippets
    from indexer.overlap import iter_windows
    from samples.footage import write_video
    path = write_video(tmp_path / "v.mp4", moving_frames(12 * 11), fps=12)  # 11 s
    got = list(iter_windows(path, 4, 2, 8, short_side=64))
    plain = list(iter_snippets(path, 4, 8, short_side=64))
    assert [(g.window.start, g.window.end) for g in got] == [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]
    assert all(g.frames.shape[0] == 8 for g in got)
    assert (got[0].frames == plain[0].frames).all() and (got[2].frames == plain[1].frames).all()
    short = write_video(tmp_path / "s.mp4", moving_frames(30), fps=12)  # 2.5 s: one plain window
    assert [(s.window.start, s.window.end) for s in iter_windows(short, 4, 2, 8, short_side=64)] == [(0, Fraction(5, 2))]


def test_ingest_records_the_grid_and_refuses_a_bad_hop(tmp_path, shared_cache):
    from search.archive import Archive
    from vidsonar.errors import InputError
    from tests.conftest import moving_frames
    from samples.footage import write_video
    path = write_video(tmp_path / "v.mp4", moving_frames(12 * 9), fps=12)
    archive = Archive(tmp_path / "home", "dual-test")
    with pytest.raises(InputError, match="whole multiple"):
        archive.ingestor(hop=3)
    report = archive.ingestor(hop=2).ingest([path])
    assert report.snippets == len(snippet_windows(9, 4, hop=2)) == 4  # [0,4) [2,6) [4,8) [6,9)
    video = archive.catalog.videos()[0]
    assert (video.window_seconds, video.hop_seconds) == (4.0, 2.0)
