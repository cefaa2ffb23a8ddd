"""On-disk caches that make projector training cheap: with the backbone frozen, its per-frame
features and the teacher's caption embeddings never change, so each is computed once.

Keys hash what the value depends on (model id, file path, size and mtime, span, frame count),
so a changed file or model misses the cache instead of serving stale features.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from align.data import Pair, load_frames


def _digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:20]


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


class MediaCache:
    """Per-pair frame crops (uint8) and frozen per-frame features (float32)."""

    def __init__(self, directory: Path, backbone, frames: int):
        self.directory, self.backbone, self.frames = Path(directory), backbone, frames

    def _key(self, pair: Pair, what: str) -> Path:
        stat = pair.media.stat()
        key = _digest(what, self.backbone.cache_key if what == "features" else self.backbone.image_size,
                      pair.key, stat.st_size, stat.st_mtime_ns, self.frames)
        return self.directory / what / key[:2] / f"{key}.npy"

    def crops(self, pair: Pair) -> np.ndarray:
        """(f, S, S, 3) uint8 central crops at the backbone's input size."""
        path = self._key(pair, "crops")
        if path.exists():
            return np.load(path)
        crops = self.backbone.crops(load_frames(pair, self.frames, self.backbone.image_size))
        _save(path, crops)
        return crops

    def features(self, pairs: list[Pair], progress=None) -> dict[str, np.ndarray]:
        """{pair.key: (f, D) float32} for the distinct media spans of ``pairs``."""
        out: dict[str, np.ndarray] = {}
        for pair in pairs:
            if pair.key in out:
                continue
            path = self._key(pair, "features")
            if path.exists():
                out[pair.key] = np.load(path)
            else:
                out[pair.key] = self.backbone.features(self.crops(pair)).astype(np.float32)
                _save(path, out[pair.key])
            if progress is not None:
                progress.update(1)
        return out


def teacher_targets(directory: Path, teacher, teacher_id: str, pairs: list[Pair],
                    query: bool = False) -> np.ndarray:
    """(n, dim) raw teacher embeddings of the pairs' captions, cached as one file per set."""
    from encoders.vsonar import teacher_encode
    key = _digest(teacher_id, query, *(f"{p.lang}\x1e{p.caption}" for p in pairs))
    path = Path(directory) / "teacher" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    out = np.zeros((len(pairs), 0), np.float32)
    by_lang: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_lang.setdefault(p.lang, []).append(i)
    for lang, idx in sorted(by_lang.items()):
        emb = teacher_encode(teacher, [pairs[i].caption for i in idx], lang, query=query)
        if out.shape[1] == 0:
            out = np.zeros((len(pairs), emb.shape[1]), np.float32)
        out[idx] = emb
    _save(path, out)
    return out
