"""A deterministic fake concept space for ingestion plumbing tests (no model, exact vectors).

Each snippet's vector depends only on its own frames (a fixed random projection of 8x8 block
means), never on the batch it came in, so runners that batch differently must agree exactly.
Built by name in any process (Ray workers too) through ``SPACE_SPEC`` or ``fake_space()``.
"""

from __future__ import annotations

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize

CONFIG = SpaceConfig(name="fake-test", family="fake-test", dim=16,
                     description="Tests only: block means through a fixed random projection.")


class FakeSpace(ConceptSpace):
    frame_size = 64

    def __init__(self, config: SpaceConfig = CONFIG, cache_dir=None):
        super().__init__(config, cache_dir)
        self.projection = np.random.default_rng(7).standard_normal((8 * 8 * 3, config.dim))
        self.calls = 0  # encode_snippets calls, to see batching

    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        frames, n, f = self._snippet_batch(frames)
        self.calls += 1
        out = np.zeros((n, self.dim), np.float32)
        for i in range(n):  # one snippet at a time: the result cannot depend on the batch
            clip = frames[i].astype(np.float64)
            h, w = clip.shape[1] // 8 * 8, clip.shape[2] // 8 * 8
            blocks = clip[:, :h, :w].reshape(f, 8, h // 8, 8, w // 8, 3).mean(axis=(0, 2, 4))
            out[i] = (blocks.reshape(-1) / 255.0) @ self.projection
        return l2_normalize(out)

    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray:
        """Text as the projection of its bytes' histogram: deterministic, meaningless."""
        hist = np.zeros((len(texts), 8 * 8 * 3))
        for i, t in enumerate(texts):
            for b in t.encode():
                hist[i, b % hist.shape[1]] += 1
        return l2_normalize(hist @ self.projection)


def fake_space() -> FakeSpace:
    return FakeSpace(CONFIG)
