"""ContentDetector scores computed in blocks (indexer.shot_scores) against scenedetect's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.decode import iter_frames
from indexer.shot_scores import BlockScores
from indexer.shots import SceneDetectDetector, iter_shot_snippets

pytest.importorskip("scenedetect", reason="needs scenedetect-headless (the scenedetect shot detector)")

FPS = 12  # the shipped reels' rate


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> dict[str, tuple[Path, list[int]]]:
    """The shipped footage's reels (samples.footage.make_clip): cuts every 5 s at 12 fps."""
    from benchmarks.shots import steady_pan
    from samples.footage import load_photo, make_clip, write_video
    folder = tmp_path_factory.mktemp("shot-scores")
    long = make_clip(folder / "reel.mp4", ["astronaut", "clock", "rocket", "page", "coffee"], seconds=5.0)
    # 28 frames (shorter than one block) of steady pans, a cut at frame 16: past scenedetect's
    # 15-frame minimum scene, so the unbatched detector reports it too
    frames = [*steady_pan(load_photo("chelsea"), 16, (192, 108)),
              *steady_pan(load_photo("motorcycle"), 12, (192, 108))]
    short = write_video(folder / "short.mp4", frames, FPS)
    return {"reel": (long.path, [60, 120, 180, 240]), "short": (short, [16])}


def _small(path: Path) -> list[np.ndarray]:
    return [f.small for f in iter_frames(path, 224, (96, 54))]


def _own_scores(frames: list[np.ndarray]) -> list[float]:
    """ContentDetector.process_frame's scores, read from the stats scenedetect records."""
    from scenedetect import FrameTimecode, StatsManager
    from scenedetect.detectors import ContentDetector
    det, stats = ContentDetector(), StatsManager()
    stats.register_metrics(det.get_metrics())
    det.stats_manager = stats
    for i, rgb in enumerate(frames):
        det.process_frame(FrameTimecode(i, float(FPS)), np.ascontiguousarray(rgb[..., ::-1]))
    # scenedetect records nothing for the first frame (it has no frame to compare with): 0.0
    return [0.0] + [stats.get_metrics(i, [ContentDetector.FRAME_SCORE_KEY])[0]
                    for i in range(1, len(frames))]


def _cuts(detector: SceneDetectDetector, frames: list[np.ndarray]) -> list[int]:
    found: list[int] = []
    for f in frames:
        found += detector.push(f)
    return found + detector.finish()


@pytest.mark.parametrize("block", [32, 7, 1])
def test_block_scores_are_contentdetectors_own_scores(reels, block):
    frames = _small(reels["reel"][0])
    assert len(frames) % block or block == 1  # 300 frames: the last block is a partial one
    scores = BlockScores(block=block)
    got: list[float] = []
    for f in frames:
        scores.add(f)
        if scores.full:
            got += scores.flush().tolist()
    got += scores.flush().tolist()
    want = _own_scores(frames)
    assert len(got) == len(want) == len(frames)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert max(want) > 40  # the reel's cuts are in there


@pytest.mark.parametrize("threshold", [15.0, 27.0, 40.0])
@pytest.mark.parametrize("reel", ["reel", "short"])
def test_batched_cuts_are_the_unbatched_detectors_cuts(reels, reel, threshold):
    path, truth = reels[reel]
    frames = _small(path)
    unbatched = _cuts(SceneDetectDetector(threshold, FPS, block=0), frames)
    assert unbatched, "the unbatched detector finds the reel's cuts"
    assert all(min(abs(c - t) for t in truth) <= 2 for c in unbatched)
    for block in (32, 5):
        assert _cuts(SceneDetectDetector(threshold, FPS, block=block), frames) == unbatched


def test_a_video_shorter_than_one_block_is_scored_at_finish(reels):
    frames = _small(reels["short"][0])
    assert len(frames) < SceneDetectDetector.BLOCK
    det = SceneDetectDetector(fps=FPS, keep_scores=True)
    assert [det.push(f) for f in frames] == [[] for _ in frames]
    assert det.decided == 0 and det.scores == []  # nothing scored yet, nothing decided
    assert det.finish() == [16]
    np.testing.assert_allclose(det.scores, _own_scores(frames), rtol=0, atol=1e-9)


def test_decided_counts_scored_frames_only_and_no_cut_lands_before_it(reels):
    frames = _small(reels["reel"][0])
    det = SceneDetectDetector(fps=FPS, block=32)
    decided_before, found = 0, []
    for i, f in enumerate(frames, 1):
        cuts = det.push(f)
        assert all(c >= decided_before for c in cuts), "a cut in frames already called decided"
        found += cuts
        scored = i - i % 32
        assert det.decided == max(0, scored - 16)  # the flash filter's 15 frames, and the current one
        decided_before = det.decided
    found += det.finish()
    assert found == _cuts(SceneDetectDetector(fps=FPS, block=0), frames)


def test_edge_weights_take_the_per_frame_path():
    det = SceneDetectDetector(weights=(1.0, 1.0, 1.0, 0.5))
    assert det.blocks is None
    with pytest.raises(ValueError, match="edge weight of 0"):
        BlockScores(weights=(1.0, 1.0, 1.0, 0.5))
    with pytest.raises(ValueError, match="at least 1 frame"):
        BlockScores(block=0)


def test_shot_snippets_are_the_same_batched_or_not(reels):
    path, _ = reels["reel"]
    runs = []
    for block in (0, 32):
        snippets = list(iter_shot_snippets(path, SceneDetectDetector(fps=FPS, block=block), window=2))
        runs.append(snippets)
    assert [s.window for s in runs[0]] == [s.window for s in runs[1]]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(*runs))
