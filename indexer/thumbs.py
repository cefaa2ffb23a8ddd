"""Snippet thumbnails: the snippet's middle sampled frame as a small JPEG, ``<video>/<idx>.jpg``.

The read stage encodes them from the frames it decodes and the writer stores them (atomically);
``indexer.thumb_repair`` makes lost or damaged ones again from the video files, with the same
encoding.
"""

from __future__ import annotations

import io
import os
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


#: a JPEG starts with the SOI marker and ends with EOI; PIL writes nothing after EOI
_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"


def thumbnail_intact(path: Path) -> bool:
    """Whether the thumbnail at ``path`` is a whole JPEG: it starts with SOI and ends with EOI.

    One written by a version that wrote thumbnails in place, cut short by a crash (an empty
    file after a power loss, a truncated one), fails this; reading two bytes at each end
    costs little, so the server checks each thumbnail it sends. False if it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return size >= 4 and os.pread(fd, 2, 0) == _SOI and os.pread(fd, 2, size - 2) == _EOI
    except OSError:
        return False
    finally:
        os.close(fd)
