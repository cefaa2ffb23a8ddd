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

from dataclasses import dataclass
from fractions import Fraction

DEFAULT_WINDOW = Fraction(4)
FRAMES_PER_SNIPPET = 8


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
                    frames: int = FRAMES_PER_SNIPPET) -> list[Window]:
    """Windows covering [0, duration): full windows, then the rest (merged if short)."""
    duration, window = as_fraction(duration), as_fraction(window)
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {float(duration)} s")
    if window <= 0:
        raise ValueError(f"window must be positive, got {float(window)} s")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    count = int(-(-duration // window))  # ceil without floats
    if count > 1 and duration - window * (count - 1) < min_tail(window):
        count -= 1  # the short remainder joins the last full window
    windows = []
    for i in range(count):
        start = window * i
        end = duration if i == count - 1 else window * (i + 1)
        windows.append(Window(i, start, end, frame_times(start, end, frames)))
    return windows
