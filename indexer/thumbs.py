"""Snippet thumbnails: the snippet's middle sampled frame as a small JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def thumbnail_path(root: Path, video_id: int, index: int) -> Path:
    return root / str(video_id) / f"{index}.jpg"


def save_thumbnail(frame: np.ndarray, path: Path, quality: int = 82) -> None:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path, format="JPEG", quality=quality)
