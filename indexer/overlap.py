"""Overlapping snippets (``vidsonar ingest --hop``): windows that start every ``hop`` seconds.

The decoder cuts a video into ``hop``-long pieces of frames / r frames (r = window / hop) in
one pass; window i joins pieces i..i+r-1, so each frame is decoded once however much the
windows overlap, and the frames are those ``indexer.sampling.snippet_windows(..., hop=)``
names. Costs: r times the vectors and the encoding; decoding is unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from indexer.decode import DecodedSnippet, VideoInfo, iter_snippets
from indexer.sampling import FRAMES_PER_SNIPPET, as_fraction, join_pieces, overlap_factor


def iter_windows(path: Path, window: Fraction | float, hop: Fraction | float | None,
                 frames: int = FRAMES_PER_SNIPPET, short_side: int = 224,
                 info: VideoInfo | None = None) -> Iterator[DecodedSnippet]:
    """The snippets of a video, overlapping when ``hop`` < ``window``; plain otherwise."""
    window = as_fraction(window)
    hop = window if hop is None else as_fraction(hop)
    r = overlap_factor(window, hop, frames)
    if r == 1:
        yield from iter_snippets(path, window, frames, short_side, info)
        return
    pieces = iter_snippets(path, hop, frames // r, short_side, info)
    held: deque[DecodedSnippet] = deque(maxlen=r)
    first: list[DecodedSnippet] = []  # the pieces of a video shorter than one window
    index = 0
    for piece in pieces:
        held.append(piece)
        if len(first) < r:
            first.append(piece)
        if len(held) == r:
            yield _join(index, list(held))
            index += 1
    if index == 0 and first:  # shorter than a window: one plain window over the whole video
        yield from iter_snippets(path, window, frames, short_side, info)


def _join(index: int, pieces: list[DecodedSnippet]) -> DecodedSnippet:
    return DecodedSnippet(join_pieces(index, [p.window for p in pieces]),
                          np.concatenate([p.frames for p in pieces]), pieces[-1].rotation)
