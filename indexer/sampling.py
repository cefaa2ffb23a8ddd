"""Snippet sampling: cut a video's time line into windows of N uniformly sampled frames.

Times are ``fractions.Fraction`` seconds, computed from the window index each time (never
accumulated), so time codes do not drift however long the video is.

Example: a 10 s video, 4 s windows, 8 frames each, gives three snippets::

    [0, 4)   frames at 0.25, 0.75, ..., 3.75   (the centre of each 0.5 s eighth)
    [4, 8)   frames at 4.25, ..., 7.75
    [8, 10)  frames at 8.125, 8.375, ..., 9.875 (the last, partial window is kept)

A 1.5 s video gives one snippet [0, 1.5) with frames 0.09375, 0.28125, ...
A remainder shorter than a quarter window is not worth a snippet of its own (it would be a
few frames repeated eight times): it joins the window before it, so a 12.5 s video gives
[0, 4), [4, 8), [8, 12.5).
Centres, not end points, are sampled: the end of a window is the start of the next one and
may lie past the last decodable frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

DEFAULT_WINDOW = Fraction(4)
FRAMES_PER_SNIPPET = 8
#: seconds between window starts; None: = the window (no overlap). See README "Snippets".
DEFAULT_HOP: Fraction | None = None


@dataclass(frozen=True)
class Window:
    index: int
    start: Fraction
    end: Fraction
    frame_times: tuple[Fraction, ...]

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


def as_fraction(seconds: float | Fraction | int | str) -> Fraction:
    """Exact seconds; floats are taken at their decimal value, with microsecond precision."""
    if isinstance(seconds, float):
        return Fraction(seconds).limit_denominator(1_000_000)
    return Fraction(seconds)


def frame_times(start: Fraction, end: Fraction, frames: int = FRAMES_PER_SNIPPET) -> tuple[Fraction, ...]:
    """Centres of ``frames`` equal parts of [start, end)."""
    step = (end - start) / frames
    return tuple(start + step * (2 * i + 1) / 2 for i in range(frames))


def min_tail(window: Fraction) -> Fraction:
    """The shortest remainder that gets a snippet of its own."""
    return window / 4


def snippet_windows(duration: Fraction | float, window: Fraction | float = DEFAULT_WINDOW,
                    frames: int = FRAMES_PER_SNIPPET, hop: Fraction | float | None = None) -> list[Window]:
    """Windows covering [0, duration): full windows, then the rest (merged if short).

    With ``hop`` shorter than ``window`` (``window`` a whole multiple r of it, ``frames`` a
    multiple of r), windows overlap: the video is cut into ``hop``-long pieces of frames / r
    frames each (the rule above), and window i joins pieces i..i+r-1, so its frames are the
    same instants a plain window over that span would sample. A 10 s video, 4 s windows, 2 s
    hop: [0, 4), [2, 6), [4, 8), [6, 10). A video shorter than ``window`` gets one window.
    """
    duration, window = as_fraction(duration), as_fraction(window)
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {float(duration)} s")
    if window <= 0:
        raise ValueError(f"window must be positive, got {float(window)} s")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    hop = window if hop is None else as_fraction(hop)
    r = overlap_factor(window, hop, frames)
    if r > 1:
        pieces = snippet_windows(duration, hop, frames // r)
        if len(pieces) >= r:
            return [join_pieces(i, pieces[i:i + r]) for i in range(len(pieces) - r + 1)]
    count = int(-(-duration // window))  # ceil without floats
    if count > 1 and duration - window * (count - 1) < min_tail(window):
        count -= 1  # the short remainder joins the last full window
    windows = []
    for i in range(count):
        start = window * i
        end = duration if i == count - 1 else window * (i + 1)
        windows.append(Window(i, start, end, frame_times(start, end, frames)))
    return windows


# --- windows inside shots -------------------------------------------------------------------
#
# Edited footage cuts every few seconds; a window that straddles a cut averages two unrelated
# scenes into one vector. So, given the cut times a shot detector found:
#
# 1. Flash cuts merge. Cuts are taken in order; a cut that would close a shot shorter than
#    ``min_shot`` (1 s) is dropped, so the short piece joins the shot after it; a last shot
#    shorter than ``min_shot`` joins the one before. Every shot is then >= min_shot (unless the
#    whole video is shorter), and every dropped cut lies within min_shot of a kept boundary.
# 2. A shot splits into near-equal windows of about ``window``: n = round(length / window)
#    (at least 1) equal windows. A shot longer than ``hold`` (2 windows) first gives full
#    windows from its start until at most ``hold`` is left, and that rest splits as above.
#    The hold is what keeps decoding memory bounded: a decoder that does not yet know where a
#    long shot ends can still close its early windows, holding at most ``hold`` seconds of
#    frames (see indexer/shots.py).
# 3. Every window keeps ``frames`` uniformly sampled frames (centres, as above), exact times.
#
# Worked example: a 20 s video, cuts at 3, 3.4 and 13 s, 4 s windows (hold 8 s):
#
#     cuts     3 (kept)  3.4 ([3, 3.4) is 0.4 s < 1 s: dropped, the flash joins the next shot)  13
#     shots    [0, 3)  [3, 13)  [13, 20)
#     [0, 3)   3 s  <= 8: round(0.75) -> 1 window   [0, 3)
#     [3, 13)  10 s >  8: one full window [3, 7), the 6 s left -> round(1.5) = 2: [7, 10) [10, 13)
#     [13, 20) 7 s  <= 8: round(1.75) -> 2 windows  [13, 16.5) [16.5, 20)
#
# Six windows; none crosses a kept cut; frames of [13, 16.5) at 13 + 7/32, 13 + 21/32, ...

MIN_SHOT = Fraction(1)


def hold_limit(window: Fraction) -> Fraction:
    """The longest stretch of a shot whose windows wait for the shot's end (2 windows)."""
    return 2 * window


def merge_shots(duration: Fraction | float, cuts, min_shot: Fraction | float = MIN_SHOT,
                ) -> list[tuple[Fraction, Fraction]]:
    """Shots [start, end) covering [0, duration) from cut times, flash cuts merged (rule 1).

    Cuts outside (0, duration) are ignored; duplicates count once.
    """
    duration, min_shot = as_fraction(duration), as_fraction(min_shot)
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {float(duration)} s")
    shots: list[tuple[Fraction, Fraction]] = []
    start = Fraction(0)
    for cut in sorted({as_fraction(c) for c in cuts}):
        if cut <= 0 or cut >= duration:
            continue
        if cut - start >= min_shot:
            shots.append((start, cut))
            start = cut
        # else: the piece [start, cut) is a flash; it runs on into the next shot
    if shots and duration - start < min_shot:
        shots[-1] = (shots[-1][0], duration)  # a short last shot joins the one before
    else:
        shots.append((start, duration))
    return shots


def split_shot(start: Fraction, end: Fraction, window: Fraction | float = DEFAULT_WINDOW,
               hold: Fraction | None = None) -> list[tuple[Fraction, Fraction]]:
    """The window spans of one shot [start, end) (rule 2)."""
    window = as_fraction(window)
    hold = hold_limit(window) if hold is None else as_fraction(hold)
    if end <= start:
        raise ValueError(f"a shot must have a positive length, got [{float(start)}, {float(end)})")
    full = max(0, math.ceil((end - start - hold) / window))
    spans = [(start + window * i, start + window * (i + 1)) for i in range(full)]
    rest_start = start + window * full
    rest = end - rest_start
    n = max(1, math.floor(rest / window + Fraction(1, 2)))
    step = rest / n
    spans += [(rest_start + step * i, end if i == n - 1 else rest_start + step * (i + 1))
              for i in range(n)]
    return spans


def shot_windows(duration: Fraction | float, cuts, window: Fraction | float = DEFAULT_WINDOW,
                 frames: int = FRAMES_PER_SNIPPET, min_shot: Fraction | float = MIN_SHOT,
                 ) -> list[Window]:
    """Windows covering [0, duration) that follow the shots the cuts make (rules 1-3)."""
    window = as_fraction(window)
    if window <= 0:
        raise ValueError(f"window must be positive, got {float(window)} s")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    spans = [span for a, b in merge_shots(duration, cuts, min_shot) for span in split_shot(a, b, window)]
    return [Window(i, a, b, frame_times(a, b, frames)) for i, (a, b) in enumerate(spans)]


def overlap_factor(window: Fraction, hop: Fraction, frames: int = FRAMES_PER_SNIPPET) -> int:
    """How many hops make a window (1: no overlap); a ValueError names a grid that cannot be."""
    window, hop = as_fraction(window), as_fraction(hop)
    if hop <= 0 or hop > window:
        raise ValueError(f"hop must be in (0, window = {float(window)} s], got {float(hop)} s")
    r = window / hop
    if r.denominator != 1 or frames % r.numerator:
        raise ValueError(f"window {float(window)} s must be a whole multiple r of hop {float(hop)} s "
                         f"with {frames} frames divisible by r (e.g. 4 s windows, 2 s hop)")
    return r.numerator


def join_pieces(index: int, pieces: list[Window]) -> Window:
    """One window over consecutive pieces: their span and all their frames."""
    return Window(index, pieces[0].start, pieces[-1].end,
                  tuple(t for p in pieces for t in p.frame_times))
