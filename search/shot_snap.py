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

Pure over plain numbers, so the moment grouping can call it wherever it builds moments:
``snap_moments`` snaps all the moments of one video so that they never overlap (search's
grounding, ``search.grounding``, calls it when the video has shots and the request allows).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search.moments import tile

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


# --- the moments of one video, snapped together ------------------------------------------------
@dataclass(frozen=True)
class Snapped:
    """A moment's span after snapping; ``snapped``: an end moved to a shot boundary (or towards
    it, as far as a neighbouring moment allowed)."""
    start: float
    end: float
    snapped: bool


def snap_moments(spans: Sequence[tuple[float, float]], shots: Sequence[tuple[float, float]],
                 scored: Sequence[tuple[float, float, float]], *, max_length: float | None = None,
                 walls: Sequence[tuple[float, float]] = (), ratio: float = RATIO,
                 cover: float = COVER) -> list[Snapped]:
    """Every moment of one video snapped to its shots, none crossing another (in input order).

    ``spans``: the moments [start, end) best first, not overlapping (as ``search.moments.ground``
    makes them). Each is snapped by ``snap_to_shots`` in that order, so the better moment claims
    a shot two moments share; an end then stops at the neighbouring moment's current edge, so the
    snapped moments never overlap and keep their order on the time line. A snap that would make a
    moment longer than ``max_length`` (and longer than it was) is not taken: a moment stays a
    scene, not a long shot's whole length. ``walls``: spans no moment may grow into (snippets
    never shown, such as a query-by-example's own snippet), neighbours that never move.

    Example: shots [0, 6) [6, 14); moments [10, 14) (best) and [6, 8); every snippet of [6, 14)
    scores alike. The first snaps to [6, 14) but stops at 8, its neighbour's end: [8, 14); the
    second's shot also matches, and [6, 8) cannot grow past 8: it stays [6, 8), unsnapped.
    """
    if not shots or not scored:
        return [Snapped(float(s), float(e), False) for s, e in spans]
    current = [(float(s), float(e)) for s, e in [*spans, *walls]]
    order = sorted(range(len(current)), key=lambda i: current[i])  # time order, kept by snapping
    for prev, nxt in zip(order, order[1:]):
        if current[prev][1] > current[nxt][0] + EPS:
            raise ValueError(f"moments {current[prev]} and {current[nxt]} overlap; "
                             "snap the non-overlapping moments of one video, outside its walls")
    place = {i: k for k, i in enumerate(order)}
    near = _Near(shots, scored)
    out = []
    for i, (start, end) in enumerate(current[:len(spans)]):
        a, b = snap_to_shots(start, end, *near.around(start, end), ratio, cover)
        if max_length is not None and b - a > max(max_length, end - start) + EPS:
            a, b = start, end
        k = place[i]
        if k > 0:
            a = max(a, current[order[k - 1]][1])
        if k < len(order) - 1:
            b = min(b, current[order[k + 1]][0])
        a, b = min(a, start), max(b, end)  # a neighbour never shrinks a moment
        current[i] = (a, b)
        out.append(Snapped(a, b, a < start - EPS or b > end + EPS))
    return out


def snap_hits(hits: list[dict], ids: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              scores: np.ndarray, shots: Sequence[tuple[float, float]],
              max_length: float | None = None, ratio: float = RATIO, cover: float = COVER) -> list[dict]:
    """Search's grounded hits of one video (best first) snapped by ``snap_moments``.

    ``ids`` / ``starts`` / ``ends`` / ``scores``: every snippet of the video in time order and
    the query's scores (``-inf``: never shown, so never evidence, and no moment grows over it).
    The evidence is each snippet's share of the time line (``search.moments.tile``), so
    overlapping windows are not counted twice. A hit's ``start`` / ``end`` become the snapped span, ``snippet_ids`` the snippets
    whose share is centred in it, and ``snapped`` says whether it moved.
    """
    lo, hi = tile(starts, ends)
    s = np.asarray(scores, np.float64)
    ok = np.isfinite(s)
    scored = list(zip(lo[ok].tolist(), hi[ok].tolist(), s[ok].tolist()))
    walls = list(zip(lo[~ok].tolist(), hi[~ok].tolist()))
    spans = snap_moments([(h["start"], h["end"]) for h in hits], shots, scored,
                         max_length=max_length, walls=walls, ratio=ratio, cover=cover)
    mid = (lo + hi) / 2
    out = []
    for hit, span in zip(hits, spans):
        if not span.snapped:
            out.append(hit)
            continue
        inside = np.asarray(ids)[(mid >= span.start - EPS) & (mid < span.end - EPS)]
        out.append({**hit, "start": span.start, "end": span.end, "snapped": True,
                    "snippet_ids": inside.tolist()})
    return out


class _Near:
    """The shots and scored snippets near a moment: ``snap_to_shots`` only looks at the shots
    holding its ends and the snippets overlapping them, so a long video's moments are snapped
    in time proportional to their own shots, not to the whole video."""

    def __init__(self, shots: Sequence[tuple[float, float]], scored: Sequence[tuple[float, float, float]]):
        self.shots = sorted((float(a), float(b)) for a, b in shots)
        self.shot_starts = [a for a, _ in self.shots]
        self.scored = sorted((float(s), float(e), float(x)) for s, e, x in scored)
        self.starts = [s for s, _, _ in self.scored]
        self.longest = max((e - s for s, e, _ in self.scored), default=0.0)

    def around(self, start: float, end: float):
        i = max(0, bisect_right(self.shot_starts, start + EPS) - 2)
        j = bisect_right(self.shot_starts, end + EPS) + 1
        shots = self.shots[i:j]
        lo = min([start] + [a for a, _ in shots])
        hi = max([end] + [b for _, b in shots])
        k0 = bisect_left(self.starts, lo - self.longest - EPS)
        k1 = bisect_right(self.starts, hi + EPS)
        return shots, self.scored[k0:k1]
