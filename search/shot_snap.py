"""Moments that snap to shots: a moment's ends move to its shots' boundaries when the whole
shot matches.

Snippets inside a shot are a few seconds each, so a moment grouped from the best snippets can
end part-way through a shot that matches from cut to cut. When the evidence says the whole
shot matches, the moment should say so too: an end snaps to its shot's boundary when the
snippets scored in that shot, at least ``ratio`` of the moment's best score, cover at least
``cover`` of the shot's length. Otherwise the end stays where the snippets put it.

Example: shots [0, 6) [6, 14) [14, 20); the moment [8, 12) from snippets [6, 10) 0.42,
[10, 14) 0.40 and nothing else scored in [6, 14): both snippets are >= 0.8 x 0.42 and cover
the whole shot, so the moment becomes [6, 14). Had only [8, 12) scored (half the shot), it
would stay [8, 12).

Pure over plain numbers, so the moment grouping can call it wherever it builds moments.
"""

from __future__ import annotations

from collections.abc import Sequence

RATIO = 0.8
COVER = 0.75
EPS = 1e-6  # seconds: boundaries stored as floats may differ in the last bit


def _shot_at(shots: Sequence[tuple[float, float]], t: float, end: bool = False):
    """The shot holding time ``t``: [a, b) for a start, (a, b] for an end."""
    for a, b in shots:
        if (a + EPS < t <= b + EPS) if end else (a - EPS <= t < b - EPS):
            return a, b
    return None


def shot_matches(shot: tuple[float, float], scored: Sequence[tuple[float, float, float]],
                 best: float, ratio: float = RATIO, cover: float = COVER) -> bool:
    """Do the snippets scoring at least ``ratio * best`` cover ``cover`` of the shot?"""
    a, b = shot
    if b <= a:
        return False
    covered = sum(max(0.0, min(e, b) - max(s, a)) for s, e, score in scored if score >= ratio * best)
    return covered >= cover * (b - a) - EPS


def snap_to_shots(start: float, end: float, shots: Sequence[tuple[float, float]],
                  scored: Sequence[tuple[float, float, float]], ratio: float = RATIO,
                  cover: float = COVER) -> tuple[float, float]:
    """The moment [start, end), each end moved to its shot's boundary if that shot matches.

    ``shots``: the video's shots [start, end) in order (empty: nothing to snap to).
    ``scored``: (start, end, score) of the video's snippets the search scored; a snippet
    not listed counts as not matching. The moment's best score is the best scored snippet
    overlapping it.
    """
    if end <= start:
        raise ValueError(f"a moment must have a positive length, got [{start}, {end})")
    if not shots or not scored:
        return start, end
    inside = [score for s, e, score in scored if s < end - EPS and e > start + EPS]
    if not inside:
        return start, end
    best = max(inside)
    first, last = _shot_at(shots, start), _shot_at(shots, end, end=True)
    if first is not None and shot_matches(first, scored, best, ratio, cover):
        start = min(start, first[0])
    if last is not None and shot_matches(last, scored, best, ratio, cover):
        end = max(end, last[1])
    return start, end
