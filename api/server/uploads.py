"""Uploads streamed straight to disk, and the checks on names and server-side paths.

The body is written chunk by chunk as it arrives (never held in memory, never spooled to
a temporary file first), counted against the size limit as it goes, and renamed into place
only when complete: a refused or broken upload leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from api.server.errors import ForbiddenError, PayloadTooLargeError, UnsupportedTypeError
from indexer.discover import inside
from vidsonar.errors import InputError, NotFoundError

#: content types a client may declare for a video; the file name's suffix decides the rest
ACCEPTED_TYPES = ("video/", "application/octet-stream", "application/mp4", "application/mxf")
#: a file name's limit on most file systems (255 bytes), less the ".NAME.part" of an upload
MAX_NAME_BYTES = 255 - len("..part")


def safe_filename(name: str, suffixes: list[str]) -> str:
    """``name`` if it is a plain file name with an accepted suffix, else a 4xx error."""
    if (not name or name.strip() != name or len(name.encode()) > MAX_NAME_BYTES
            or any(unicodedata.category(c) == "Cc" for c in name)):  # NUL, newline, escapes
        raise InputError(f"bad file name {name!r}: give a plain name such as clip.mp4")
    if (name in {".", ".."} or name.startswith(".")
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
        shown = _shortened(raw)
        if "\x00" in raw or not raw.strip():
            raise InputError(f"bad path {shown!r}")
        try:
            path = Path(raw).expanduser()
        except RuntimeError:  # Python 3.11's expanduser() of an unknown ~user
            raise InputError(f"path {shown!r} names the home of an unknown user") from None
        if not path.is_absolute():
            raise InputError(f"path {shown!r} must be absolute")
        try:  # a name too long, a folder it may not enter: the client's path, so a 400
            resolved = path.resolve()
            within = inside(resolved, roots)
            found = within and resolved.exists()
        except RuntimeError:  # what Python 3.11's resolve() raises on a symlink loop
            raise InputError(f"cannot check path {shown!r}: a symlink loop") from None
        except OSError as exc:
            raise InputError(f"cannot check path {shown!r}: {exc.strerror or 'unreadable'}") from None
        if not within:
            raise ForbiddenError(f"path {shown!r} is outside the ingest roots "
                                 f"({', '.join(map(str, roots))})")
        if not found:
            raise NotFoundError(f"no such file or folder: {shown!r}")
        out.append(resolved)
    return out


def _shortened(text: str, keep: int = 120) -> str:
    """``text``, its middle elided when it is longer than ``keep`` characters."""
    if len(text) <= keep:
        return text
    return f"{text[:keep // 2]}...({len(text) - keep} characters)...{text[-keep // 2:]}"
