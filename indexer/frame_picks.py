"""Single frames at given times (thumbnails made again), decoded as ``indexer.decode`` decodes
snippets: the same opening, threads, time line and scaling (decode's own helpers, shared so
that a frame fetched here is the very frame a window sampled), with seeking added for frames
far into a video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from indexer.decode import _open, _Scaler, _set_threads, _timeline, pyav
from indexer.sampling import as_fraction
from vidsonar.errors import DecodeError

#: a frame wanted this many seconds past the decoder's position is reached by a seek to the
#: keyframe before it rather than by decoding every frame up to it (a thumbnail an hour into
#: a film would otherwise decode the hour)
SEEK_SECONDS = 10.0
#: times given as floats (the catalog's) of exact times: a frame this close past one is at it
TIME_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FramePick:
    """The frame on screen at ``time`` (seconds from the first frame), taken among the frames
    at or after ``since`` (the first of those if none is on screen yet), as a window of
    ``iter_snippets`` samples among its own frames; ``since`` None: among all frames."""
    time: float
    since: float | None = None

    @property
    def earliest(self) -> float:
        return self.time if self.since is None else min(self.since, self.time)


class _Playhead:
    """A decoder that walks forward over a video's time line and seeks when that is cheaper."""

    def __init__(self, path: Path, seek_seconds: float):
        self.path, self.seek_seconds = path, seek_seconds
        self._start()
        self.origin = Fraction(self.ahead[1].pts) * self.stream.time_base  # time 0, in pts

    def _start(self, origin: Fraction | None = None) -> None:
        self.container = _open(self.path)
        self.stream = self.container.streams.video[0]
        _set_threads(self.stream)
        self.frames = _timeline(self.path, self.container, self.stream, origin)
        try:
            self.ahead = next(self.frames)  # the next frame not yet passed
        except BaseException:
            self.close()
            raise
        self.shown: tuple[Fraction, object] | None = None  # the last frame passed

    def close(self) -> None:
        self.container.close()

    def pick(self, pick: FramePick):
        """The decoded frame ``pick`` names."""
        passed = self.shown is not None and self.shown[0] > pick.time + TIME_TOLERANCE
        far = self.ahead is not None and pick.earliest - self.ahead[0] > self.seek_seconds
        if passed or far:
            self._seek(pick.earliest)
        while self.ahead is not None and self.ahead[0] <= pick.time + TIME_TOLERANCE:
            self.shown, self.ahead = self.ahead, next(self.frames, None)
        shown = self.shown
        if shown is not None and (pick.since is None or shown[0] >= pick.since - TIME_TOLERANCE):
            return shown[1]
        if self.ahead is None:
            raise DecodeError(str(self.path), f"no frame at or after {pick.earliest:.3f} s")
        return self.ahead[1]

    def _seek(self, to: float) -> None:
        """Go to the keyframe at or before ``to`` s. Where the container lands past it (a
        stream without an index, MPEG-TS), start again from the first frame and walk from
        then on: seeking there cannot be trusted, not even back to the start."""
        av = pyav()
        try:
            self.container.seek(int((self.origin + as_fraction(to)) / self.stream.time_base),
                                stream=self.stream)
            frames = _timeline(self.path, self.container, self.stream, self.origin)
            first = next(frames)
        except (av.FFmpegError, DecodeError):
            first = None
        if first is not None and first[0] <= as_fraction(to) + Fraction(TIME_TOLERANCE):
            self.frames, self.ahead, self.shown = frames, first, None
            return
        self.close()
        self._start(self.origin)
        self.seek_seconds = float("inf")


def frames_at(path: Path, picks: list[FramePick], short_side: int = 224,
              seek_seconds: float = SEEK_SECONDS) -> Iterator[tuple[int, np.ndarray]]:
    """(i, frame) for each of ``picks``, the frame as ``iter_snippets`` samples it: upright RGB
    at the encoder's size (fixed by the first frame, as there), on the same time line. Decoded
    in time order, seeking over stretches longer than ``seek_seconds``, and yielded as decoded
    (a film's thousands of frames are never held at once). Raises DecodeError on unreadable
    media."""
    av = pyav()
    head = _Playhead(path, seek_seconds)
    try:
        scale = _Scaler(short_side, path)
        scale(head.ahead[1])  # the scaled size comes from the first frame
        for i in sorted(range(len(picks)), key=lambda i: (picks[i].earliest, picks[i].time)):
            yield i, scale(head.pick(picks[i])).rgb()
    except av.FFmpegError as exc:
        raise DecodeError(str(path), f"converting a frame failed ({exc.strerror or exc})") from exc
    finally:
        head.close()
