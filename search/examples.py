"""Query by example: an image file, a video clip (optionally a time range), or a snippet."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace, l2_normalize
from indexer.decode import iter_snippets
from storage.catalog import Catalog
from vidsonar.errors import InputError, MediaError, NotFoundError

_RANGE = re.compile(r"^(?P<path>.+):(?P<start>\d+(?:\.\d+)?)-(?P<end>\d+(?:\.\d+)?)$")


def parse_video_spec(spec: str) -> tuple[Path, float | None, float | None]:
    """``PATH`` or ``PATH:START-END`` (seconds) -> (path, start, end)."""
    if Path(spec).exists():
        return Path(spec), None, None
    m = _RANGE.match(spec)
    if not m:
        return Path(spec), None, None
    start, end = float(m["start"]), float(m["end"])
    if end <= start:
        raise InputError(f"time range {start}-{end} in {spec!r} is empty: END must exceed START")
    return Path(m["path"]), start, end


def image_vector(space: ConceptSpace, path: str | Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
    except FileNotFoundError as exc:
        raise MediaError(str(path), "no such file") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(str(path), f"not a readable image ({exc})") from exc
    return space.encode_images([pixels])[0]


def video_vector(space: ConceptSpace, spec: str) -> np.ndarray:
    """The mean of the clip's snippet vectors (within the time range, if one is given)."""
    path, start, end = parse_video_spec(spec)
    frames = [s.frames for s in iter_snippets(path, short_side=space.frame_size)
              if start is None or (float(s.window.start) < end and start < float(s.window.end))]
    if not frames:
        raise InputError(f"{spec!r}: no snippet of the video lies in that time range")
    return l2_normalize(space.encode_snippets(np.stack(frames)).mean(axis=0))


def snippet_vector(catalog: Catalog, space: str, snippet_id: int, vectors_for=None) -> np.ndarray:
    """An ingested snippet's vector; ``vectors_for(ids)`` reads it where the catalog keeps none."""
    ids, vectors = vectors_for([snippet_id]) if vectors_for else catalog.vectors_for([snippet_id], space)
    if not len(ids):
        raise NotFoundError(f"no snippet {snippet_id} in the {space!r} space")
    return vectors[0]
