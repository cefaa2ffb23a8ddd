"""Frames of one span of a video, read through the indexer's decoder.

For the projector trainer (``align.data``), whose video pairs name a span in seconds
(``start``/``end``). Decoding goes through ``indexer.decode``: the same guarded PyAV (FFmpeg's
log callback off, so no deadlock), rotation applied, swscale to the short side, and exact
``Fraction`` times counted from the first frame, so a span means what a snippet's times mean.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from indexer.decode import _decode, _open, _Scaler, as_rgb, frames_shown_at, pyav
from indexer.sampling import as_fraction, frame_times
from vidsonar.errors import DecodeError


def read_span(path: str | Path, start: float | Fraction | None = None, end: float | Fraction | None = None,
              frames: int = 8, short_side: int = 224) -> np.ndarray:
    """(f, H, W, 3) uint8 upright RGB frames shown in [start, end) seconds; f <= ``frames``.

    With more frames than ``frames`` in the span, the ones shown at the centres of ``frames``
    equal parts are taken (as ``indexer.decode`` samples a snippet); with fewer, all of them.
    ``end=None`` reads to the last frame. Raises DecodeError if nothing decodes in the span.
    """
    av = pyav()
    lo = as_fraction(start or 0)
    hi = as_fraction(end) if end is not None else None
    container = _open(Path(path))
    kept: list[tuple[Fraction, object]] = []  # (time, ScaledFrame): RGB only for the frames taken
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        scale = _Scaler(short_side, path)
        first = last = None
        step = Fraction(0)
        try:
            for frame in _decode(container, stream, []):
                t = Fraction(frame.pts) * tb
                first = t if first is None else first
                t -= first
                if last is not None and t <= last:
                    continue  # duplicate or out-of-order pts, as in iter_snippets
                if hi is not None and t >= hi:
                    break
                if last is not None:
                    step = t - last
                last = t
                if t >= lo:
                    kept.append((t, scale(frame)))
        except av.FFmpegError as exc:
            raise DecodeError(str(path), f"cannot read video frames ({exc.strerror or exc})") from exc
    finally:
        container.close()
    if not kept:
        raise DecodeError(str(path), f"no frames between {float(lo)} s and "
                                     f"{float(hi) if hi is not None else 'the end'}")
    if len(kept) <= frames:
        return np.stack([as_rgb(img) for _, img in kept])
    stop = hi if hi is not None and hi <= kept[-1][0] + step else kept[-1][0] + step
    return frames_shown_at(kept, frame_times(lo, stop, frames))
