"""Captioned media for alignment: JSONL manifests and frame loading.

One line per pair; ``media`` is relative to the manifest's folder unless absolute::

    {"media": "photos/cat.jpg", "caption": "a cat on a sofa", "lang": "eng_Latn"}
    {"media": "clips/pan.mp4", "caption": "eine Rakete", "lang": "deu_Latn", "start": 0, "end": 5}

``group`` (optional) names what the media shows, so that retrieval counts any item of the same
group as a hit (several crops of one photo, several captions of one clip). Images are 1-frame
inputs; a video span gives up to ``frames`` frames spread evenly over it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.jsonl import read_jsonl, write_jsonl
from vidsonar.errors import InputError, MediaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class Pair:
    media: Path
    caption: str
    lang: str
    start: float | None = None
    end: float | None = None
    group: str = ""

    @property
    def key(self) -> str:
        """What the frames depend on (not the caption)."""
        return f"{self.media}|{self.start}|{self.end}"

    @property
    def group_id(self) -> str:
        return self.group or self.key


def read_manifest(path: str | Path) -> list[Pair]:
    path = Path(path)
    pairs = []
    for n, row in read_jsonl(path):
        try:
            media = Path(row["media"]).expanduser()
            pairs.append(Pair(media if media.is_absolute() else (path.parent / media).resolve(),
                              str(row["caption"]), str(row.get("lang", "eng_Latn")),
                              row.get("start"), row.get("end"), str(row.get("group", ""))))
        except (KeyError, TypeError) as exc:
            raise InputError(f"{path}:{n}: not a manifest row ({exc}); need media, caption, lang") from exc
    if not pairs:
        raise InputError(f"manifest {path} is empty")
    return pairs


write_manifest = write_jsonl


def split(pairs: list[Pair], fraction: float, seed: int, max_val: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out whole groups (never a caption of media that is also trained on)."""
    groups = sorted({p.group_id for p in pairs})
    random.Random(seed).shuffle(groups)
    n_val = max(1, round(len(groups) * fraction)) if len(groups) > 1 else 0
    held = set(groups[:n_val])
    train = [p for p in pairs if p.group_id not in held]
    val = [p for p in pairs if p.group_id in held][:max_val]
    return train, val


def load_frames(pair: Pair, frames: int, short_side: int) -> np.ndarray:
    """(f, H, W, 3) uint8 frames for one pair; f is 1 for images, <= frames for video spans."""
    from encoders.frames import fit_frame
    if not pair.media.exists():
        raise MediaError(str(pair.media), "no such file")
    if pair.media.suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image
        with Image.open(pair.media) as img:
            return fit_frame(np.asarray(img.convert("RGB")), short_side)[None]
    return _video_frames(pair, frames, short_side)


def _video_frames(pair: Pair, frames: int, short_side: int) -> np.ndarray:
    # the indexer's decoder: exact times from the first frame, rotation, the PyAV deadlock guard
    from indexer.spans import read_span
    return read_span(pair.media, pair.start, pair.end, frames=frames, short_side=short_side)
