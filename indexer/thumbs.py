"""Snippet thumbnails: the snippet's middle sampled frame as a small JPEG, ``<video>/<idx>.jpg``.

The read stage encodes them from the frames it decodes and the writer stores them;
``indexer.thumb_repair`` makes lost ones again from the video files, with the same encoding.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

THUMB_QUALITY = 82


def thumbnail_path(root: Path, video_id: int, index: int) -> Path:
    return root / str(video_id) / f"{index}.jpg"


def thumbnail_jpeg(frame: np.ndarray, quality: int = THUMB_QUALITY) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
