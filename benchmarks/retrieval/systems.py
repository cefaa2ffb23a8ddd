"""Systems under test, and the one set of snippets they all see.

A system is a concept space: a registered one (``lite``, a trained ``v-sonar`` space, the
``siglip2`` / ``pe-core`` dual-encoder baselines, ``dual-test``), or any open_clip model as a
native dual encoder, named ``open_clip:MODEL[@WEIGHTS]`` (e.g.
``open_clip:ViT-B-32@openai``, ``open_clip:PE-Core-B-16@hf-hub:timm/PE-Core-B-16``).

Every video is decoded once into one snippet: ``FRAMES`` frames at the centres of equal parts
of the whole video (as the paper encodes a clip), centre-cropped to a square at the largest
frame size any system reads, and streamed in chunks through every system. Each system reads
the same pixels and resizes them to its own input, as it would at ingestion.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig
from vidsonar.errors import InputError

FRAMES = 8
#: one window longer than any video: iter_snippets then samples the video's real extent
WHOLE_VIDEO = 10 ** 7


#: ``lite[int8]``, ``lite[fp32]``, ``lite[torch]``: the lite space with its vision encoder so
LITE_VARIANTS = {"int8": {"runtime": "onnx", "precision": "int8"},
                 "fp32": {"runtime": "onnx", "precision": "fp32"},
                 "torch": {"runtime": "torch"}}


def load_system(name: str, home=None, device: str | None = None) -> ConceptSpace:
    """A space by registry name, ``NAME[variant]`` (a lite space's vision runtime and precision,
    ``LITE_VARIANTS``, to compare them side by side) or ``open_clip:MODEL[@WEIGHTS]``."""
    from encoders.registry import get_space_config, load_space, scan_dir
    from vidsonar.home import Home
    h = home if isinstance(home, Home) else Home.resolve(home)
    scan_dir(h.root / "spaces")
    if name.startswith("open_clip:"):
        return load_space(open_clip_config(name, device))
    base, _, variant = name.partition("[")
    cfg = get_space_config(base)
    if variant:
        vision = LITE_VARIANTS.get(variant.rstrip("]"))
        if vision is None or cfg.family != "label-bridge":
            raise InputError(f"system {name!r}: variants [{', '.join(LITE_VARIANTS)}] are for lite spaces")
        cfg = dataclasses.replace(cfg, name=name, vision={**cfg.vision, **vision})
    return load_space(cfg, device=device, cache_dir=h.cache)


def open_clip_config(name: str, device: str | None = None) -> SpaceConfig:
    model, _, weights = name.removeprefix("open_clip:").partition("@")
    if not model:
        raise InputError(f"system {name!r}: give open_clip:MODEL[@WEIGHTS]")
    from encoders.openclip import open_clip
    arch = open_clip().get_model_config(model) or {}
    return SpaceConfig(name=name, family="open-clip-dual", dim=int(arch.get("embed_dim", 0)),
                       description=f"open_clip {model} as a native dual encoder",
                       vision={"model": model, "weights": weights or None},
                       options={"device": device or "auto"})


def decode_clip(path: str, size: int, frames: int = FRAMES) -> np.ndarray:
    """(frames, size, size, 3) uint8: ``frames`` frames spread over the whole video, centre-cropped."""
    from encoders.frames import center_crop
    from indexer.decode import iter_snippets
    return np.ascontiguousarray(center_crop(next(iter_snippets(Path(path), WHOLE_VIDEO, frames, size)).frames,
                                            size))


def iter_decoded(paths: Sequence[str], size: int, chunk: int = 256, workers: int = 4,
                 frames: int = FRAMES) -> Iterator[np.ndarray]:
    """Chunks of (n, frames, size, size, 3) snippets, in order, decoded by ``workers`` threads.

    Streaming keeps memory bounded: PE-Video's 15K test videos at 448 px would be 72 GB."""
    with ThreadPoolExecutor(max(1, workers)) as pool:  # PyAV releases the GIL while decoding
        for i in range(0, len(paths), chunk):
            yield np.stack(list(pool.map(lambda p: decode_clip(p, size, frames), paths[i:i + chunk])))


def encode_vision(space: ConceptSpace, snippets: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([space.encode_snippets(np.asarray(snippets[i:i + batch]))
                           for i in range(0, len(snippets), batch)])
