"""Thumbnails that went missing, made again from the video files.

Ingestion encodes a thumbnail from the frames it decodes (``indexer.thumbs``). One deleted
since (a cleaned cache, a home restored without them) is made again from the video file: the
frame at the snippet's middle sampled time, chosen by the rule its window sampled it by
(``thumbnail_pick``), decoded at the space's frame size and encoded at the same JPEG quality,
so it is the thumbnail ingestion wrote. It is written atomically: a reader never sees half a
JPEG.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from indexer.frame_picks import FramePick, frames_at
from indexer.sampling import DEFAULT_WINDOW, as_fraction, snippet_windows
from indexer.stages.read import FILE_ERRORS
from indexer.thumbs import thumbnail_jpeg, thumbnail_path
from storage.atomic import atomic_write
from storage.catalog import Catalog, Snippet, Video
from storage.ids import pack_snippet_id, unpack_snippet_id
from storage.shots import shots_of
from vidsonar.errors import MediaError, NotFoundError

log = logging.getLogger(__name__)


def thumbnail_pick(video: Video, snippet: Snippet, shot_aware: bool) -> FramePick:
    """Which frame a snippet's thumbnail is: the one on screen at its middle sampled time,
    among the frames of the decoded piece it was sampled from.

    A window of the fixed grid samples among its own frames: a 4 s window [8, 12) at 10.25 s,
    among frames from 8 s on. Overlapping windows (4 s every 2 s) join 2 s pieces, and the
    middle frame (the 5th of 8) comes from the second piece: [8, 12) at 10.25 s, from 10 s on.
    Shot-aware windows sample among all frames from the one on screen at their start.
    """
    times = snippet.frame_times
    middle = len(times) // 2
    time = float(times[middle])
    if shot_aware:
        return FramePick(time)
    window = as_fraction(video.window_seconds or DEFAULT_WINDOW)
    hop = as_fraction(video.hop_seconds) if video.hop_seconds else window
    r = round(window / hop)
    # fewer than r pieces: the decoder made one plain window over the whole video
    if r > 1 and len(snippet_windows(video.duration or snippet.end, hop, len(times) // r)) >= r:
        piece = snippet.idx + middle // (len(times) // r)
        return FramePick(time, float(hop * piece))
    return FramePick(time, float(snippet.start))


def missing_thumbnails(catalog: Catalog, thumbs: Path) -> dict[int, list[int]]:
    """Snippet indexes whose thumbnail file is missing, by video (ingested videos only).

    One directory listing a video rather than a stat a snippet; still a walk over every
    video's folder and every snippet row, which is why ``vidsonar info`` counts only when asked.
    """
    q = (sa.select(Snippet.video_id, Snippet.idx).join(Video).where(Video.status == "ok")
         .order_by(Snippet.video_id, Snippet.idx))
    missing: dict[int, list[int]] = {}
    with catalog.session() as s:
        rows = s.execute(q).yield_per(50_000)
        for video_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            try:
                present = set(os.listdir(Path(thumbs) / str(video_id)))
            except FileNotFoundError:
                present = set()
            gone = [idx for _, idx in group if f"{idx}.jpg" not in present]
            if gone:
                missing[video_id] = gone
    return missing


def regenerate(catalog: Catalog, thumbs: Path, video_id: int, indexes: list[int],
               frame_size: int) -> int:
    """Make the thumbnails of snippets ``indexes`` of a video again from its file; how many.

    Raises NotFoundError when the video or its file is gone, MediaError when the file is not
    the one ingested (another size) or cannot be decoded.
    """
    rows = catalog.snippets(pack_snippet_id(video_id, i) for i in indexes)
    if not rows:
        return 0
    video = next(iter(rows.values())).video
    path = Path(video.path)
    if video.status != "ok":
        raise NotFoundError(f"no ingested video {video_id}")
    if not path.is_file():
        raise NotFoundError(f"the file of video {video_id} is gone from {video.path}: its "
                            "thumbnails cannot be made again; restore the file or re-ingest it")
    if path.stat().st_size != video.size_bytes:
        raise MediaError(video.path, f"not the file ingested as video {video_id} (its size "
                         "changed): its thumbnails would not match; re-ingest it")
    shot_aware = bool(shots_of(catalog, video_id))
    snippets = sorted(rows.values(), key=lambda r: r.idx)
    picks = [thumbnail_pick(video, r, shot_aware) for r in snippets]
    for i, frame in frames_at(path, picks, frame_size):
        jpeg = thumbnail_jpeg(frame)
        atomic_write(thumbnail_path(thumbs, video_id, snippets[i].idx),
                     lambda tmp, jpeg=jpeg: Path(tmp).write_bytes(jpeg))
    return len(snippets)


def remake_thumbnail(catalog: Catalog, thumbs: Path, snippet_id: int, frame_size: int) -> Path:
    """Make one snippet's thumbnail again from its video; its path. NotFoundError when there
    is no such snippet, or its video's file is gone too."""
    video_id, index = unpack_snippet_id(snippet_id)
    if video_id < 1 or not regenerate(catalog, thumbs, video_id, [index], frame_size):
        raise NotFoundError(f"no snippet {snippet_id}")
    log.info("made the missing thumbnail of snippet %d again", snippet_id)
    return thumbnail_path(thumbs, video_id, index)


@dataclass
class ThumbRepair:
    """What ``repair_thumbnails`` did: thumbnails made, and the videos it could not make any for."""
    missing: int = 0
    made: int = 0
    failed: list[dict] = field(default_factory=list)  # {video_id, path, error}


def repair_thumbnails(catalog: Catalog, thumbs: Path, frame_size: int,
                      progress: Callable[[int, int | None, str | None], None] | None = None,
                      ) -> ThumbRepair:
    """Make every missing thumbnail of an archive again, one video at a time: a video that
    cannot be decoded or whose file is gone fails alone. ``progress(video_id, made, error)``
    is called after each video."""
    report = ThumbRepair()
    for video_id, indexes in missing_thumbnails(catalog, thumbs).items():
        report.missing += len(indexes)
        try:
            made = regenerate(catalog, thumbs, video_id, indexes, frame_size)
        except FILE_ERRORS as exc:  # NotFoundError (the file is gone) is one of them
            video = catalog.video(video_id)
            report.failed.append({"video_id": video_id, "path": video and video.path,
                                  "error": str(exc)})
            log.warning("video %d: thumbnails not made again: %s", video_id, exc)
            if progress:
                progress(video_id, None, str(exc))
            continue
        report.made += made
        if progress:
            progress(video_id, made, None)
    return report
