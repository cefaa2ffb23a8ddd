"""Which files to ingest: given files always, video files found in given folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from storage.atomic import sha256_file

VIDEO_SUFFIXES = frozenset({
    ".3g2", ".3gp", ".asf", ".avi", ".f4v", ".flv", ".gif", ".m1v", ".m2ts", ".m2v", ".m4v",
    ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".mxf", ".ogg", ".ogv", ".rm", ".swf",
    ".ts", ".vob", ".webm", ".wmv", ".y4m",
})


def discover(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus video files (by suffix) under named folders, sorted, deduplicated.

    A path that does not exist is returned as is, so that it is reported as a failure
    rather than silently dropped.
    """
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_SUFFIXES:
                        p = Path(root) / name
                        found.setdefault(str(p.resolve()), p)
        else:
            found.setdefault(str(path.resolve()), path)
    return list(found.values())


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the same footage at another path or name is the same video."""
    return sha256_file(path)
