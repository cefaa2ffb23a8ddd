"""Snippet ids: one int64 that is both the catalog key and the FAISS id.

``id = video_id << 20 | snippet_index``. Packing the video into the high bits lets a video's
vectors be removed from FAISS as one id range, and an id found by FAISS names its video
without a catalog lookup. 2**20 snippets of 4 s is 48 days of footage per video;
2**43 videos is far beyond any archive.
"""

from __future__ import annotations

INDEX_BITS = 20
MAX_SNIPPETS_PER_VIDEO = 1 << INDEX_BITS
MAX_VIDEO_ID = (1 << (63 - INDEX_BITS)) - 1


def pack_snippet_id(video_id: int, index: int) -> int:
    if not 0 < video_id <= MAX_VIDEO_ID:
        raise ValueError(f"video id {video_id} out of range 1..{MAX_VIDEO_ID}")
    if not 0 <= index < MAX_SNIPPETS_PER_VIDEO:
        raise ValueError(f"snippet index {index} out of range 0..{MAX_SNIPPETS_PER_VIDEO - 1}")
    return (video_id << INDEX_BITS) | index


def unpack_snippet_id(snippet_id: int) -> tuple[int, int]:
    return snippet_id >> INDEX_BITS, snippet_id & (MAX_SNIPPETS_PER_VIDEO - 1)


def video_id_range(video_id: int) -> tuple[int, int]:
    """Half-open id range [lo, hi) holding every snippet of a video."""
    return video_id << INDEX_BITS, (video_id + 1) << INDEX_BITS
