"""ContentDetector's frame scores for a block of frames at once.

PySceneDetect's ContentDetector scores each frame by the mean absolute change of hue,
saturation and value against the frame before it. Done frame by frame on the shot
detector's tiny (96x54) frames, the cost is per-call overhead: one cvtColor, one split and
three numpy reductions for 5,184 pixels. ``BlockScores`` does the same arithmetic for a
block of frames: one cvtColor on the frames stacked into one image, one absolute
difference and one sum per channel over the block. The scores are the same numbers
(the per-channel sums are exact integers, then divided and weighted in ContentDetector's
order), so the detector's own FlashFilter, fed these scores, decides the same cuts.

Frames are RGB: OpenCV's RGB->HSV on them gives exactly the HSV of BGR->HSV on the flipped
frame, without the flip's copy (asking swscale for BGR instead changes pixels by up to 3
levels: its RGB and BGR writers round differently).
"""

from __future__ import annotations

import numpy as np


class BlockScores:
    """Frames in, ContentDetector scores out, ``block`` frames at a time.

    ``weights`` are ContentDetector's (hue, saturation, luma, edges); the edge component needs
    a Canny pass per frame and is not computed here, so its weight must be 0. The first frame
    of a video scores 0.0, as ContentDetector's does. Memory: at most ``block`` frames and the
    HSV of the last scored one.
    """

    def __init__(self, weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0),
                 block: int = 32):
        if len(weights) != 4 or weights[3] != 0:
            raise ValueError(f"block scores need an edge weight of 0, got weights {tuple(weights)}")
        if not any(weights):
            raise ValueError("block scores need at least one weight that is not 0")
        if block < 1:
            raise ValueError(f"block must be at least 1 frame, got {block}")
        self.weights, self.block = tuple(float(w) for w in weights), int(block)
        self.total = sum(abs(w) for w in self.weights)  # ContentDetector's normaliser
        self.pending: list[np.ndarray] = []  # frames not yet scored
        self.last_hsv: np.ndarray | None = None  # (pixels, 3) HSV of the last scored frame

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.block

    def add(self, rgb: np.ndarray) -> None:
        """One (h, w, 3) uint8 RGB frame, the same size as the others."""
        self.pending.append(rgb)

    def flush(self) -> np.ndarray:
        """Scores of the pending frames, in order (float64, empty if none); they are forgotten."""
        import cv2
        if not self.pending:
            return np.zeros(0)
        frames = np.stack(self.pending)
        self.pending = []
        n, h, w, _ = frames.shape
        # HSV is per pixel: the frames stacked one above the other convert as one image
        hsv = cv2.cvtColor(frames.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV).reshape(n, h * w, 3)
        # the first frame is compared with itself: every component 0, score 0.0
        prev = hsv[:1] if self.last_hsv is None else self.last_hsv[None]
        self.last_hsv = hsv[-1].copy()  # not a view: the block is freed
        both = np.concatenate([prev, hsv])
        change = cv2.absdiff(both[1:], both[:-1])  # |a - b| of uint8 is exact in uint8
        # per frame, cv2.sumElems: a float64 per channel, exact (integers far below 2**53);
        # numpy's sum over the strided pixel axis costs 25x more
        sums = np.array([cv2.sumElems(frame)[:3] for frame in change])  # (n, 3)
        # ContentDetector: numpy.sum(|a - b|) / float(pixels) per component, then
        # sum(component * weight) / sum(|weight|), in this order (so the floats are the same)
        # (the edge term adds 0.0, which changes no score: they are all >= 0)
        components = sums / float(h * w)
        score = components[:, 0] * self.weights[0] + components[:, 1] * self.weights[1]
        score = score + components[:, 2] * self.weights[2]
        return score / self.total
