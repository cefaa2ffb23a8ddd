"""Browser-playable previews of footage browsers cannot play (AVI, WMV, MPEG-2, Theora...).

Made with an ffmpeg filter graph (``ffmpeg-python`` driving the static ffmpeg binary that
``imageio-ffmpeg`` ships): scale to at most 480 lines, H.264 + AAC in MP4 with the index at
the front (``+faststart``), so a player can seek to a hit's time code before the file has
downloaded. Time codes are kept: no trimming, no frame-rate change. A disk that fills while ffmpeg
writes is an OSError naming the folder (answered 507 by the server), not a fault of the video.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

from indexer.decode import probe, pyav
from vidsonar.errors import MediaError

#: what the major browsers play natively, by container suffix and video codec
BROWSER_CONTAINERS = frozenset({".mp4", ".m4v", ".mov", ".webm"})
BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
PREVIEW_LINES = 480


def browser_playable(path: Path) -> bool:
    path = Path(path)
    return path.suffix.lower() in BROWSER_CONTAINERS and probe(path).codec in BROWSER_CODECS


def make_preview(src: Path, dst: Path, lines: int = PREVIEW_LINES) -> Path:
    """Transcode ``src`` to a faststart H.264 MP4 at ``dst`` (written atomically)."""
    probe(src)  # a file that is not (or no longer) a readable video: a MediaError naming it
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp.mp4")
    # made here, so that a folder this user may not write fails as the OSError naming it
    # (storage.operational), not in ffmpeg's words as if the video were at fault
    tmp.touch()
    try:
        _transcode(src, tmp, lines)
        tmp.replace(dst)
    except BaseException:
        with contextlib.suppress(OSError):  # the first error is the one to tell
            tmp.unlink(missing_ok=True)
        raise
    return dst


def _transcode(src: Path, dst: Path, lines: int) -> None:
    import ffmpeg
    import imageio_ffmpeg
    stream = ffmpeg.input(str(src))
    video = stream.video.filter("scale", -2, f"min({lines},trunc(ih/2)*2)")
    audio = stream.audio if _has_audio(src) else None
    streams = [video, audio] if audio is not None else [video]
    out = ffmpeg.output(*streams, str(dst), vcodec="libx264", preset="veryfast", crf=26,
                        pix_fmt="yuv420p", movflags="+faststart",
                        **({"acodec": "aac", "audio_bitrate": "96k"} if audio is not None else {}))
    try:
        # packets the decoder rejects are skipped, as in decoding for the index (Theora
        # files can reject most of theirs and still play); ffmpeg gives up above 2/3 by default
        out.global_args("-max_error_rate", "1").overwrite_output().run(
            cmd=imageio_ffmpeg.get_ffmpeg_exe(), quiet=True)
    except ffmpeg.Error as exc:
        stderr = (exc.stderr or b"").decode(errors="replace")
        code = _out_of_space(stderr)
        if code is not None:
            # the disk's fault, not the video's: the OSError that storage.operational tells
            # (507), naming the folder to free space in
            raise OSError(code, os.strerror(code), str(dst.parent)) from exc
        detail = stderr.strip().splitlines()[-1:] or ["ffmpeg failed"]
        raise MediaError(str(src), f"cannot make a browser preview: {detail[0]}") from exc


#: how ffmpeg tells a write refused for want of space: ``error code: -28 (No space left on
#: device)``, the negated errno, which no locale translates
_NO_SPACE = {code: re.compile(rf"(?:code:? ?-{code}\b|{re.escape(os.strerror(code))})")
             for code in (errno.ENOSPC, errno.EDQUOT)}


def _out_of_space(stderr: str) -> int | None:
    """ENOSPC or EDQUOT if ffmpeg's output says that writing failed for want of space."""
    return next((code for code, words in _NO_SPACE.items() if words.search(stderr)), None)


def _has_audio(path: Path) -> bool:
    av = pyav()
    with av.open(str(Path(path).absolute())) as container:  # a file, never a URL (decode._container)
        return bool(container.streams.audio)
