"""Seeded vectors shaped like embeddings: clustered, of low intrinsic dimension, unit norm.

Uniform random vectors are the worst case for every ANN method and unlike any embedding
(all neighbours are equally far). Real embeddings sit near a low-dimensional manifold and
clump by topic. The generator, in full:

1. ``n_clusters`` cluster centres ~ N(0, I) in a latent space of ``latent`` dims (64);
   cluster sizes follow a Zipf-like law (a few big topics, many small ones);
2. a point = its centre + N(0, ``spread``^2 I) in the latent space (spread 0.6: clusters
   overlap, so nearest neighbours cross cluster borders);
3. lifted to ``dim`` dims by a fixed random matrix with orthonormal columns, plus isotropic
   ambient noise, isotropic, of ``noise`` (0.35) times the point's latent norm, that no
   low-rank model captures;
4. normalized to unit length (cosine = inner product).

Queries come from the same distribution but are never in the database (fresh points).
Everything is a function of the seed and generated in blocks, so 1M x 1024 needs no more
memory than its output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Generator:
    dim: int = 1024
    latent: int = 64
    n_clusters: int = 1000
    spread: float = 0.6
    noise: float = 0.35
    seed: int = 0

    def _model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        centres = rng.standard_normal((self.n_clusters, self.latent)).astype(np.float32)
        lift, _ = np.linalg.qr(rng.standard_normal((self.dim, self.latent)))
        weights = 1.0 / np.arange(1, self.n_clusters + 1) ** 0.5
        return centres, lift.astype(np.float32).T, weights / weights.sum()

    def sample(self, n: int, stream: int = 0, block: int = 65_536,
               out: np.ndarray | None = None) -> np.ndarray:
        """``n`` float32 unit vectors; ``stream`` picks an independent draw (0: base, 1: queries)."""
        centres, lift, weights = self._model()
        out = np.empty((n, self.dim), np.float32) if out is None else out
        for start in range(0, n, block):
            rng = np.random.default_rng([self.seed, stream, start])
            m = min(block, n - start)
            which = rng.choice(self.n_clusters, size=m, p=weights)
            latent = centres[which] + self.spread * rng.standard_normal((m, self.latent), np.float32)
            x = latent @ lift
            x += (self.noise / np.sqrt(self.dim)) * np.linalg.norm(latent, axis=1, keepdims=True) \
                * rng.standard_normal((m, self.dim), np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[start:start + m] = x
        return out


def clustered(n: int, dim: int = 64, seed: int = 0, stream: int = 0, **kwargs) -> np.ndarray:
    """Shorthand for tests: ``n`` structured unit vectors of ``dim`` dims."""
    latent = kwargs.pop("latent", min(64, max(dim // 4, 2)))
    return Generator(dim=dim, latent=latent, seed=seed, **kwargs).sample(n, stream)
