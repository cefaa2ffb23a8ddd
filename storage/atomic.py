"""Atomic file writes: write a temporary file beside the target, fsync, rename."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from storage.leases import Liveness
from storage.owners import Owner, this_owner

log = logging.getLogger(__name__)

#: a temporary file names its writer (``@host@pid@start@space@``, its owner string,
#: ``storage.owners``; ``@host@pid@`` before), so one left by a killed writer can be told from
#: one being written now (``sweep_stale_temps``)
_WRITER = re.compile(r"@(?P<host>[^@/]*)@(?P<pid>\d+)@(?:(?P<start>\d+)@(?P<space>[0-9a-f]+)@)?")
#: a temporary file untouched this long is stale when its writer cannot be checked here (the
#: older, unnamed form; a writer on another host): no write takes that long
IDLE_STALE_SECONDS = 24 * 3600


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: Python 3.11 has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the mode of a written file: what ``open`` would give (0666 less the umask), not mkstemp's
#: 0600, so an archive shared by several users (a search replica, a group's home) stays readable
FILE_MODE = 0o666 & ~_umask()


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path`` whose name says which process writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = "@" + this_owner().replace(":", "@") + "@"
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer}", suffix=".tmp")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then move the result over ``path`` in one rename."""
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        os.chmod(tmp, FILE_MODE)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_files(files: Mapping[Path, bytes]) -> None:
    """Write each of ``files`` (path -> bytes) through a temporary file renamed over it: a
    process killed at any point leaves each path whole or as it was, never a truncated file.

    Nothing is synced: this is for derived files that are checked and made again when lost
    (a video's thumbnails, ``indexer.thumbs.thumbnail_intact``), where an fsync a file would
    cost every ingest on a network file system to guard against a power loss only."""
    done: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            fd, tmp = _temp_beside(path)
            done.append((tmp, path))
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        for tmp, path in done:
            os.replace(tmp, path)
    finally:
        for tmp, _ in done:
            if os.path.exists(tmp):
                os.unlink(tmp)


def sweep_stale_temps(directory: Path) -> list[Path]:
    """Delete the temporary files of ``atomic_write`` that writers killed mid-write left in
    ``directory`` (each may be a whole copy of an index). A file of a writer still running on
    this host is left alone; so is one of a writer on another host (a shared folder), since
    without the catalog another machine's writer cannot be told gone (``Liveness``), until
    the file has not been written for ``IDLE_STALE_SECONDS``: no write takes that long."""
    removed = []
    liveness = Liveness()
    for tmp in Path(directory).glob(".*.tmp"):
        m = _WRITER.search(tmp.name)
        try:
            idle = time.time() - tmp.stat().st_mtime > IDLE_STALE_SECONDS
            if m is None:
                stale = idle
            else:
                writer = ":".join(m.group(*(("host", "pid", "start", "space") if m["start"]
                                            else ("host", "pid"))))
                elsewhere = not Owner.parse(writer).checkable_here()
                stale = (elsewhere and idle) or not liveness.alive(writer)
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    if removed:
        log.info("removed %d temporary files that killed writers left in %s", len(removed), directory)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
