"""Deterministic stand-ins for tests that check plumbing, not meaning, and catalog helpers.

``HashSpace`` is the one fake concept space: every vector is a fixed function of its own
input and nothing else. Words hash to fixed random vectors (a text is their sum); a snippet is
its frames' 8x8 grid of block-mean colours through a fixed random projection, computed one
snippet at a time, so the vectors never depend on the batch they came in and runners that
batch differently must give the same bytes. No weights, milliseconds per call, the same
vectors every run and in every process (a Ray worker rebuilds it from its ``SpaceSpec``).
``hash_space`` registers it (as space ``hash-test``) for the duration of a ``with`` block, so
nothing outlives the test module that asked for it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize
from encoders.device import one_blas_thread
from encoders.registry import add_space_config, register_family, scoped_registry
from storage.catalog import Catalog, SnippetRecord
from storage.ids import pack_snippet_id

HASH_SPACE = "hash-test"


class HashSpace(ConceptSpace):
    """Words hash to fixed random vectors; a snippet is its block-mean colours, projected."""

    needs_language = False
    frame_size = 48
    GRID = 8  # block means per side

    def __init__(self, config: SpaceConfig, cache_dir=None):
        super().__init__(config, cache_dir)
        cells = self.GRID * self.GRID * 3
        self.projection = np.random.default_rng(7).standard_normal((cells, config.dim))
        # an offset, so that a mid-grey clip too has a direction
        self.bias = 0.01 * np.random.default_rng(8).standard_normal(config.dim)
        self.calls = 0  # encode_snippets calls, so tests can see how snippets were batched
        self.shares: list[int] = []  # the cores each share_cores call left to others, in order
        self.prepared = 0  # prepare calls
        self.blas_held: list[bool] = []  # per encode_snippets call: was BLAS held to one thread?

    def share_cores(self, reserved: int) -> None:
        self.shares.append(reserved)

    def prepare(self) -> None:
        self.prepared += 1

    def _encode_text(self, texts, lang, query):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
        return l2_normalize(out + 1e-3)

    def encode_snippets(self, frames):
        frames, n, f = self._snippet_batch(frames)
        self.calls += 1
        self.blas_held.append(one_blas_thread().held)
        g = self.GRID
        out = np.zeros((n, self.dim), np.float32)
        for i in range(n):  # one snippet at a time: the result cannot depend on the batch
            clip = frames[i].astype(np.float64)
            h, w = clip.shape[1] // g * g, clip.shape[2] // g * g
            blocks = clip[:, :h, :w].reshape(f, g, h // g, g, w // g, 3).mean(axis=(0, 2, 4))
            # centred on mid-grey: clips that differ point in different directions
            out[i] = (blocks.reshape(-1) / 255.0 - 0.5) @ self.projection + self.bias
        return l2_normalize(out)

    @property
    def has_decoder(self):
        return True

    def decode(self, vectors, lang, **options):
        return [f"[{lang}] a snippet of norm {np.linalg.norm(v):.1f}" for v in vectors]


def hash_config(name: str = HASH_SPACE, dim: int = 16) -> SpaceConfig:
    return SpaceConfig(name, HASH_SPACE, dim, "e5", description="tests only: hashed words and block colours")


@contextmanager
def hash_space(name: str = HASH_SPACE, dim: int = 16) -> Iterator[SpaceConfig]:
    """The hash space registered by name (for servers and CLIs that open it so) inside the block."""
    with scoped_registry():
        register_family(HASH_SPACE, f"{__name__}:HashSpace")
        yield add_space_config(hash_config(name, dim))


def add_video(catalog: Catalog, vectors: np.ndarray, space: str, path: str | None = None,
              digest: str | None = None, window: float = 4.0) -> tuple[int, np.ndarray]:
    """Reserve a video, give it one ``window``-second snippet per vector, complete it.

    Returns the video's id and its snippet ids. ``path`` and ``digest`` default to ones made
    from the next free name, so calls need only the vectors.
    """
    n = len(vectors)
    tag = digest or f"video-{len(catalog.videos()) + 1}"
    video_id = catalog.reserve_video(path or f"/videos/{tag}.mp4", tag, 1, None)
    records = [SnippetRecord(pack_snippet_id(video_id, i), i, window * i, window * (i + 1), [window * i + window / 8])
               for i in range(n)]
    catalog.complete_video(video_id, space=space, info={"duration": window * n, "fps": 25.0},
                           snippets=records, vectors=np.asarray(vectors, np.float32))
    return video_id, np.array([r.id for r in records], np.int64)
