"""The trainer's video reader goes through the indexer's decoder: exact span times, rotation."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from align.data import Pair, load_frames
from indexer.spans import read_span
from samples.footage import write_video
from tests.conftest import moving_frames, write_rotated_video, write_vfr_video
from vidsonar.errors import DecodeError


def test_a_span_takes_only_its_frames_by_timestamp(tmp_path):
    # 1 s at 2 fps, then 3 s at 30 fps
    times = [Fraction(i, 2) for i in range(2)] + [1 + Fraction(i, 30) for i in range(90)]
    path = write_vfr_video(tmp_path / "vfr.mp4", times)
    assert read_span(path, 0, 1, frames=8, short_side=64).shape == (2, 64, 96, 3)  # the 2 fps second
    late = read_span(path, 2, 3, frames=8, short_side=64)
    assert late.shape == (8, 64, 96, 3)
    assert len({f.tobytes() for f in late}) == 8  # 30 frames in the span: 8 distinct ones sampled
    whole = read_span(path, None, None, frames=4, short_side=64)
    assert whole.shape[0] == 4


def test_the_trainer_sees_rotated_video_upright(tmp_path):
    frames = load_frames(Pair(write_rotated_video(tmp_path), "a clip", "eng_Latn", 0, 2), frames=4, short_side=64)
    assert frames.shape == (4, 96, 64, 3)  # portrait, as a player shows it


def test_an_empty_span_or_a_bad_file_is_a_decode_error(tmp_path, bad_files):
    path = write_video(tmp_path / "short.mp4", moving_frames(12), fps=12)  # 1 s
    with pytest.raises(DecodeError, match="no frames between 5.0 s"):
        read_span(path, 5, 6)
    bad = next(iter(bad_files.values()))
    with pytest.raises(DecodeError):
        load_frames(Pair(bad, "x", "eng_Latn", 0, 1), frames=2, short_side=32)
    assert np.asarray(read_span(path, 0, 1, frames=2, short_side=32)).dtype == np.uint8
