"""search.shot_snap: moments snap to the shot boundaries when the whole shot matches."""

from __future__ import annotations

import pytest

from search.shot_snap import shot_matches, snap_to_shots

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
