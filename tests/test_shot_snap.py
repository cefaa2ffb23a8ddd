"""search.shot_snap: moments snap to the shot boundaries when the whole shot matches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from indexer.sampling import merge_shots, shot_windows
from search.moments import ground, tile
from search.shot_snap import Snapped, shot_matches, snap_hits, snap_moments, snap_to_shots

SHOTS = [(0.0, 6.0), (6.0, 14.0), (14.0, 20.0)]


def test_worked_example_from_the_docstring():
    scored = [(6.0, 10.0, 0.42), (10.0, 14.0, 0.40)]
    assert snap_to_shots(8.0, 12.0, SHOTS, scored) == (6.0, 14.0)
    assert snap_to_shots(8.0, 12.0, SHOTS, [(8.0, 12.0, 0.42)]) == (8.0, 12.0)


def test_weak_snippets_are_not_evidence():
    scored = [(6.0, 10.0, 0.42), (10.0, 14.0, 0.20)]  # 0.20 < 0.8 x 0.42
    assert snap_to_shots(6.0, 10.0, SHOTS, scored) == (6.0, 10.0)
    assert not shot_matches((6.0, 14.0), scored, 0.42)


def test_each_end_snaps_to_its_own_shot():
    # a moment across the cut at 6: the first shot matches throughout, the second does not
    scored = [(0.0, 3.0, 0.5), (3.0, 6.0, 0.5), (6.0, 10.0, 0.45)]
    assert snap_to_shots(3.0, 10.0, SHOTS, scored) == (0.0, 10.0)


def test_nothing_to_snap_to():
    assert snap_to_shots(2.0, 4.0, [], [(2.0, 4.0, 1.0)]) == (2.0, 4.0)
    assert snap_to_shots(2.0, 4.0, SHOTS, []) == (2.0, 4.0)
    with pytest.raises(ValueError, match="positive length"):
        snap_to_shots(4.0, 4.0, SHOTS, [])


# --- the moments of one video snapped together: never overlapping ------------------------------
def test_docstring_example_the_better_moment_claims_the_shot_up_to_its_neighbour():
    shots = [(0.0, 6.0), (6.0, 14.0)]
    scored = [(6.0, 8.0, 0.5), (8.0, 10.0, 0.5), (10.0, 12.0, 0.5), (12.0, 14.0, 0.5)]
    first, second = snap_moments([(10.0, 14.0), (6.0, 8.0)], shots, scored)
    assert (first.start, first.end, first.snapped) == (8.0, 14.0, True)
    assert (second.start, second.end, second.snapped) == (6.0, 8.0, False)
    alone, = snap_moments([(10.0, 14.0)], shots, scored)
    assert (alone.start, alone.end, alone.snapped) == (6.0, 14.0, True)
    walled, = snap_moments([(10.0, 14.0)], shots, scored, walls=[(7.0, 8.0)])  # a snippet never shown
    assert (walled.start, walled.end, walled.snapped) == (8.0, 14.0, True)


def test_a_snap_past_the_longest_moment_is_not_taken():
    shots = [(0.0, 30.0)]
    scored = [(4.0 * i, 4.0 * (i + 1), 0.5) for i in range(7)] + [(28.0, 30.0, 0.5)]
    assert snap_moments([(8.0, 12.0)], shots, scored, max_length=16.0) == [Snapped(8.0, 12.0, False)]
    assert snap_moments([(8.0, 12.0)], shots, scored, max_length=30.0) == [Snapped(0.0, 30.0, True)]


def test_overlapping_moments_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        snap_moments([(0.0, 8.0), (4.0, 12.0)], SHOTS, [(0.0, 12.0, 1.0)])


@st.composite
def shot_videos(draw):
    """A video's shots and snippets as ingestion makes them (windows inside shots), or a grid
    whose windows cross the shots (overlapping or not), with the query's scores."""
    duration = draw(st.floats(4.0, 80.0))
    cuts = sorted(draw(st.lists(st.floats(0.5, duration - 0.5), max_size=8)))
    shots = [(float(a), float(b)) for a, b in merge_shots(duration, cuts)]
    if draw(st.booleans()):
        windows = shot_windows(duration, cuts)
        starts = [float(w.start) for w in windows]
        ends = [float(w.end) for w in windows]
    else:
        hop = draw(st.sampled_from([2.0, 4.0]))
        starts = [i * hop for i in range(int(duration // hop))] or [0.0]
        ends = [min(s + 4.0, duration) for s in starts]
    scores = draw(st.lists(st.floats(0.0, 1.0), min_size=len(starts), max_size=len(starts)))
    if draw(st.booleans()):  # a query by example: its own snippet is never shown
        scores[draw(st.integers(0, len(scores) - 1))] = float("-inf")
    return shots, starts, ends, scores, draw(st.floats(0.0, 1.0)), draw(st.floats(4.0, 24.0))


@settings(max_examples=150, deadline=None)
@given(shot_videos())
def test_snapped_moments_of_a_video_never_overlap_and_only_grow(case):
    shots, starts, ends, scores, margin, max_length = case
    ids = np.arange(len(starts), dtype=np.int64) + 1000
    hits = [{"start": m.start, "end": m.end, "snippet_ids": ids[m.first:m.last + 1].tolist(),
             "snapped": False} for m in ground(scores, starts, ends, margin, max_length)]
    snapped = snap_hits(hits, ids, np.array(starts), np.array(ends), np.array(scores), shots, max_length)
    assert len(snapped) == len(hits)
    edges = {a for a, _ in shots} | {b for _, b in shots}
    for before, after in zip(hits, snapped):
        assert after["start"] <= before["start"] and before["end"] <= after["end"]  # only grows
        assert after["snapped"] == ((after["start"], after["end"]) != (before["start"], before["end"]))
        if after["snapped"]:
            assert set(before["snippet_ids"]) <= set(after["snippet_ids"])
            assert after["end"] - after["start"] <= max(max_length, before["end"] - before["start"]) + 1e-9
        others = {x for h in snapped if h is not after for x in (h["start"], h["end"])}
        for end, was in ((after["start"], before["start"]), (after["end"], before["end"])):
            # an end stays, reaches its shot's cut, or stops at the neighbouring moment
            assert end == was or any(abs(end - e) < 1e-6 for e in edges | others), (end, was)
    spans = sorted((h["start"], h["end"]) for h in snapped)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:]))  # never overlap
    claimed = [s for h in snapped for s in h["snippet_ids"]]
    assert len(claimed) == len(set(claimed))  # no snippet in two moments
    lo, hi = tile(starts, ends)
    for i in np.flatnonzero(~np.isfinite(scores)):  # nor one never shown
        assert ids[i] not in claimed
        assert all(h["end"] <= lo[i] + 1e-9 or h["start"] >= hi[i] - 1e-9 for h in snapped)
