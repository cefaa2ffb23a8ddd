"""Thumbnails that went missing or were damaged, made again from the video files.

Ingestion encodes a thumbnail from the frames it decodes (``indexer.thumbs``). One deleted
since (a cleaned cache, a home restored without them), or cut short (an empty or truncated
JPEG that a crash left when thumbnails were written in place), is made again from the video
file, if it still holds the bytes ingested (``check_unchanged``): the
frame at the snippet's middle sampled time, chosen by the rule its window sampled it by
(``thumbnail_pick``), decoded at the space's frame size and encoded at the same JPEG quality,
so it is the thumbnail ingestion wrote. It is written atomically: a reader never sees half a
JPEG.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from indexer.frame_picks import FramePick, frames_at
from indexer.sampling import DEFAULT_WINDOW, as_fraction, snippet_windows
from indexer.stages.read import FILE_ERRORS
from indexer.thumbs import thumbnail_intact, thumbnail_jpeg, thumbnail_path
from storage.atomic import atomic_write, sha256_file
from storage.catalog import Catalog, Snippet, Video
from storage.ids import pack_snippet_id, unpack_snippet_id
from storage.items import ItemStore
from storage.shots import shots_of
from vidsonar.errors import CatalogUnreachableError, MediaError, NotFoundError

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


@dataclass
class ThumbCheck:
    """Snippet indexes by video whose thumbnail must be made again: ``missing`` files, and
    ``damaged`` ones (present but not a whole JPEG, ``thumbnail_intact``)."""
    missing: dict[int, list[int]] = field(default_factory=dict)
    damaged: dict[int, list[int]] = field(default_factory=dict)

    def to_make(self) -> dict[int, list[int]]:
        """Both, by video, in video order."""
        return {v: sorted(self.missing.get(v, []) + self.damaged.get(v, []))
                for v in sorted(self.missing.keys() | self.damaged.keys())}


def check_thumbnails(catalog: Catalog, thumbs: Path, damaged: bool = True) -> ThumbCheck:
    """The thumbnails of ingested videos that are missing, and (``damaged``) those present but
    cut short: an empty or truncated JPEG left by a crash of a version that wrote them in place.

    One directory listing a video rather than a stat a snippet, plus (``damaged``) two 2-byte
    reads of each file present; still a walk over every video's folder and every snippet row,
    which is why ``vidsonar info`` checks only when asked.
    """
    q = (sa.select(Snippet.video_id, Snippet.idx).join(Video).where(Video.status == "ok")
         .order_by(Snippet.video_id, Snippet.idx))
    found = ThumbCheck()
    with catalog.session() as s:
        rows = s.execute(q).yield_per(50_000)
        for video_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            folder = Path(thumbs) / str(video_id)
            try:
                present = set(os.listdir(folder))
            except FileNotFoundError:
                present = set()
            gone, cut = [], []
            for _, idx in group:
                name = f"{idx}.jpg"
                if name not in present:
                    gone.append(idx)
                elif damaged and not thumbnail_intact(folder / name):
                    cut.append(idx)
            if gone:
                found.missing[video_id] = gone
            if cut:
                found.damaged[video_id] = cut
    return found


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    """The file's SHA-256, once for each state of the file (its stat is the key): the server
    asks for a video's missing thumbnails one request at a time."""
    return sha256_file(Path(path))


def check_unchanged(catalog: Catalog, video: Video, path: Path) -> None:
    """Raise MediaError unless ``path`` still holds the bytes ingested as ``video``.

    As ingestion tells a changed file (``indexer.stages.plan``): another size is another file;
    the size and mtime its ingestion item recorded mean the same file, unread; any other
    mtime (a copy, a touch, other bytes of the same size) is settled by the SHA-256 the
    catalog holds.
    """
    st = path.stat()
    redo = (f"its thumbnails would show other footage; re-ingest it (`vidsonar ingest "
            f"{video.path}`) to index what it holds now")
    if st.st_size != video.size_bytes:
        raise MediaError(video.path, f"not the file ingested as video {video.id} (its size "
                         f"changed: {video.size_bytes} -> {st.st_size} bytes): {redo}")
    item = ItemStore(catalog).get(str(path.resolve()))
    if (item is not None and item.video_id == video.id and item.content_hash == video.content_hash
            and (item.size_bytes, item.mtime_ns) == (st.st_size, st.st_mtime_ns)):
        return
    if _digest(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != video.content_hash:
        raise MediaError(video.path, f"not the file ingested as video {video.id}: it holds "
                         f"other bytes of the same size (its SHA-256 is not the one ingested, "
                         f"{video.content_hash[:12]}...): {redo}")


def remake(catalog: Catalog, thumbs: Path, video_id: int, indexes: list[int],
           frame_size: int) -> Iterator[int]:
    """Make the thumbnails of snippets ``indexes`` of a video again from its file, yielding
    each index once its thumbnail is written (a video that fails part-way has written those).

    Raises NotFoundError when the video or its file is gone, MediaError when the file is not
    the one ingested (``check_unchanged``) or cannot be decoded.
    """
    rows = catalog.snippets(pack_snippet_id(video_id, i) for i in indexes)
    if not rows:
        return
    video = next(iter(rows.values())).video
    path = Path(video.path)
    if video.status != "ok":
        raise NotFoundError(f"no ingested video {video_id}")
    if not path.is_file():
        raise NotFoundError(f"the file of video {video_id} is gone from {video.path}: its "
                            "thumbnails cannot be made again; restore the file or re-ingest it")
    check_unchanged(catalog, video, path)
    shot_aware = bool(shots_of(catalog, video_id))
    snippets = sorted(rows.values(), key=lambda r: r.idx)
    picks = [thumbnail_pick(video, r, shot_aware) for r in snippets]
    for i, frame in frames_at(path, picks, frame_size):
        jpeg = thumbnail_jpeg(frame)
        atomic_write(thumbnail_path(thumbs, video_id, snippets[i].idx),
                     lambda tmp, jpeg=jpeg: Path(tmp).write_bytes(jpeg))
        yield snippets[i].idx


def regenerate(catalog: Catalog, thumbs: Path, video_id: int, indexes: list[int],
               frame_size: int) -> int:
    """``remake``, all at once: how many thumbnails were made."""
    return sum(1 for _ in remake(catalog, thumbs, video_id, indexes, frame_size))


def remake_thumbnail(catalog: Catalog, thumbs: Path, snippet_id: int, frame_size: int) -> Path:
    """Make one snippet's thumbnail again from its video; its path. NotFoundError when there
    is no such snippet, or its video's file is gone too; MediaError when the file changed."""
    video_id, index = unpack_snippet_id(snippet_id)
    if video_id < 1 or not regenerate(catalog, thumbs, video_id, [index], frame_size):
        raise NotFoundError(f"no snippet {snippet_id}")
    log.info("made the thumbnail of snippet %d again", snippet_id)
    return thumbnail_path(thumbs, video_id, index)


@dataclass
class ThumbRepair:
    """What ``repair_thumbnails`` did: thumbnails missing and damaged, those made (including
    those of a video that failed part-way), and the videos that failed."""
    missing: int = 0
    damaged: int = 0
    made: int = 0
    failed: list[dict] = field(default_factory=list)  # {video_id, path, error, made}


def repair_thumbnails(catalog: Catalog, thumbs: Path, frame_size: int,
                      progress: Callable[[int, int, str | None], None] | None = None,
                      ) -> ThumbRepair:
    """Make every missing or damaged thumbnail of an archive again, one video at a time: a
    video that cannot be decoded, or whose file is gone or changed, fails alone.
    ``progress(video_id, made, error)`` is called after each video."""
    report = ThumbRepair()
    check = check_thumbnails(catalog, thumbs)
    report.missing = sum(map(len, check.missing.values()))
    report.damaged = sum(map(len, check.damaged.values()))
    for video_id, indexes in check.to_make().items():
        made = 0
        try:
            for _ in remake(catalog, thumbs, video_id, indexes, frame_size):
                made += 1
        except CatalogUnreachableError:
            raise  # the catalog's, not this video's
        except FILE_ERRORS as exc:  # NotFoundError (the file is gone) is one of them
            report.made += made
            video = catalog.video(video_id)
            report.failed.append({"video_id": video_id, "path": video and video.path,
                                  "error": str(exc), "made": made})
            log.warning("video %d: %d of %d thumbnails made again, then: %s", video_id, made,
                        len(indexes), exc)
            if progress:
                progress(video_id, made, str(exc))
            continue
        report.made += made
        if progress:
            progress(video_id, made, None)
    return report
