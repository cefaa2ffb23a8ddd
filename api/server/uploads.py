"""Uploads streamed straight to disk, and the checks on names and server-side paths.

The body is written chunk by chunk as it arrives (never held in memory, never spooled to
a temporary file first), counted against the size limit as it goes, and renamed into place
only when complete: a refused or broken upload leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from api.server.errors import ForbiddenError, PayloadTooLargeError, UnsupportedTypeError
from vidsonar.errors import InputError, NotFoundError

#: content types a client may declare for a video; the file name's suffix decides the rest
ACCEPTED_TYPES = ("video/", "application/octet-stream", "application/mp4", "application/mxf")


def safe_filename(name: str, suffixes: list[str]) -> str:
    """``name`` if it is a plain file name with an accepted suffix, else a 4xx error."""
    if not name or name.strip() != name or len(name) > 255:
        raise InputError(f"bad file name {name!r}: give a plain name such as clip.mp4")
    if ("\x00" in name or name in {".", ".."} or name.startswith(".")
            or PurePosixPath(name).name != name or PureWindowsPath(name).name != name):
        raise InputError(f"bad file name {name!r}: a name may not contain a path, '..' or a "
                         "leading dot (path traversal is refused)")
    suffix = Path(name).suffix.lower()
    if suffix not in suffixes:
        raise UnsupportedTypeError(f"file type {suffix or '(none)'!r} of {name!r} is not accepted; "
                                   f"upload one of: {' '.join(suffixes)}")
    return name


def check_content_type(content_type: str | None) -> None:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith(ACCEPTED_TYPES):
        raise UnsupportedTypeError(f"content type {kind!r} is not a video; send video/* or "
                                   "application/octet-stream")


async def save_stream(chunks: AsyncIterator[bytes], folder: Path, name: str, limit: int,
                      declared: int | None = None, on_bytes=None) -> Path:
    """Write ``chunks`` to ``folder/<token>/<name>``; refuse past ``limit`` bytes."""
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(f"upload of {declared} bytes exceeds the limit of {limit} bytes "
                                   f"({limit / 2**20:.0f} MiB)")
    target_dir = folder / secrets.token_hex(6)
    target_dir.mkdir(parents=True)
    target = target_dir / name
    partial = target_dir / f".{name}.part"
    size = 0
    try:
        with open(partial, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"upload exceeds the limit of {limit} bytes "
                                               f"({limit / 2**20:.0f} MiB)")
                f.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        if size == 0:
            raise InputError(f"empty upload: the body of {name!r} has no bytes")
        os.replace(partial, target)
        return target
    except BaseException:
        partial.unlink(missing_ok=True)
        try:
            target_dir.rmdir()
        except OSError:
            pass
        raise


def check_ingest_paths(paths: list[str], roots: list[Path]) -> list[Path]:
    """Resolve server-side paths (symlinks too) and keep them under the configured roots."""
    if not roots:
        raise ForbiddenError("ingesting server-side paths is off: start the server with "
                             "VIDSONAR_INGEST_ROOTS naming the folders it may read")
    if not paths:
        raise InputError("no paths given: name files or folders under the ingest roots")
    out = []
    for raw in paths:
        if "\x00" in raw or not raw.strip():
            raise InputError(f"bad path {raw!r}")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            raise InputError(f"path {raw!r} must be absolute")
        resolved = path.resolve()
        if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
            raise ForbiddenError(f"path {raw!r} is outside the ingest roots "
                                 f"({', '.join(map(str, roots))})")
        if not resolved.exists():
            raise NotFoundError(f"no such file or folder: {raw!r}")
        out.append(resolved)
    return out
