"""Which files to ingest: given files always, video files found in given folders."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from storage.atomic import sha256_file

log = logging.getLogger(__name__)

#: what a folder is searched for. Picture suffixes (.jpg, .png, .webp) are not: a folder of
#: footage often holds photos, and each would be a failure of the run. .gif is, for animated
#: GIFs; a GIF of one frame, like any picture named as a video, then fails by name
#: (``vidsonar.errors.StillImageError``, from the decoder, which reads the bytes)
VIDEO_SUFFIXES = frozenset({
    ".3g2", ".3gp", ".asf", ".avi", ".f4v", ".flv", ".gif", ".m1v", ".m2ts", ".m2v", ".m4v",
    ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".mxf", ".ogg", ".ogv", ".rm", ".swf",
    ".ts", ".vob", ".webm", ".wmv", ".y4m",
})


def discover(paths: Iterable[str | os.PathLike], within: Sequence[Path] | None = None) -> list[Path]:
    """Files named directly, plus video files (by suffix) under named folders, sorted, deduplicated.

    A path that does not exist is returned as is, so that it is reported as a failure
    rather than silently dropped. Linked folders are followed (each real folder once, so a
    link loop ends). ``within``: resolved folders that found files must resolve into (the
    server's ingest roots); a file found through a link that leads out is skipped, logged.
    """
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for p in _video_files(path, within):
                real = real_path(p)
                if within is not None and not inside(real, within):
                    log.warning("skipped %s: it resolves to %s, outside the allowed folders", p, real)
                    continue
                found.setdefault(str(real), p)
        else:
            found.setdefault(str(real_path(path)), path)
    return list(found.values())


def real_path(path: str | os.PathLike) -> Path:
    """``path`` absolute with its links resolved; a link loop (a.mp4 -> b.mp4 -> a.mp4) is
    resolved as far as it goes, where ``Path.resolve`` raises, so that it fails alone."""
    return Path(os.path.realpath(path))


def not_a_file(path: Path) -> str:
    """Why ``path``, which is no regular file, cannot be read: what a failure says."""
    if path.is_symlink() and not path.exists():
        try:
            path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link loop (it leads back to itself)"
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    return "not a regular file" if path.exists() else "no such file"


def inside(real: Path, folders: Sequence[Path]) -> bool:
    """Whether the resolved path ``real`` is one of ``folders`` or under one."""
    return any(real == f or real.is_relative_to(f) for f in folders)


def _video_files(top: Path, within: Sequence[Path] | None = None) -> Iterator[Path]:
    """Video files under ``top`` in sorted order, hidden names left out, linked folders
    followed once per real folder (and not at all where they lead out of ``within``)."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        real = os.path.realpath(root)
        if real in seen or within is not None and not inside(Path(real), within):
            if real not in seen:
                log.warning("skipped %s: it resolves to %s, outside the allowed folders", root, real)
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_SUFFIXES:
                yield Path(root) / name


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the same footage at another path or name is the same video."""
    return sha256_file(path)
