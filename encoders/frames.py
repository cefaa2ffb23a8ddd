"""Frame geometry shared by decoders and vision encoders."""

from __future__ import annotations

import numpy as np


def _as_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


#: the long side of a scaled frame is held to this many short sides. Encoders crop the central
#: square, so nothing past it is seen; and a 16384 x 8 strip scaled to a 224-pixel short side
#: would be 460,000 pixels long (300 MB a frame, gigabytes a snippet). A frame longer than this
#: is scaled to fit instead, and the crop pads it (``center_crop``).
MAX_ASPECT = 4


def scaled_size(width: int, height: int, short_side: int, least: int = 1) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` pixels, or less where the long
    side would pass ``MAX_ASPECT`` short sides; each at least ``least`` pixels."""
    scale = min(short_side / min(width, height), short_side * MAX_ASPECT / max(width, height))
    return max(least, round(width * scale)), max(least, round(height * scale))


def fit_frame(img: np.ndarray, short_side: int) -> np.ndarray:
    """RGB uint8 copy of ``img`` scaled so its short side is ``short_side`` pixels (see
    ``scaled_size`` for very long images)."""
    from PIL import Image
    img = _as_rgb(img)
    h, w = img.shape[:2]
    size = scaled_size(w, h, short_side)
    if size == (w, h):
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Central ``size`` x ``size`` crop of (..., H, W, C) frames; pads smaller frames with black."""
    h, w = frames.shape[-3:-1]
    if h < size or w < size:
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        pad = [(0, 0)] * (frames.ndim - 3) + [(pad_h // 2, pad_h - pad_h // 2),
                                              (pad_w // 2, pad_w - pad_w // 2), (0, 0)]
        frames = np.pad(frames, pad)
        h, w = frames.shape[-3:-1]
    top, left = (h - size) // 2, (w - size) // 2
    return frames[..., top:top + size, left:left + size, :]
