"""Failures of the machine under the archive, told in one line: a full disk, a damaged or
read-only catalog, a folder this user may not write (its permissions, a read-only file system).
They are not bugs, so the user gets what happened and what to do, not a traceback (the CLI's
``fail_cleanly``) and not a bare 500 (the server answers 507 or 503).

Every write of the archive is atomic (a catalog transaction, a temporary file renamed), so
after any of these nothing already written is lost: free space, or mend the file, and run the
command again.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

DISK_FULL, DAMAGED, READ_ONLY = "disk full", "damaged catalog", "read-only"
UNWRITABLE = "unwritable folder"  # told with the folder's name: no fixed advice in _ADVICE

#: SQLite's words for each (they reach us as sqlite3 / SQLAlchemy errors, without an errno)
_SQLITE = ((DISK_FULL, ("database or disk is full",)),
           (DAMAGED, ("database disk image is malformed", "file is not a database")),
           (READ_ONLY, ("attempt to write a readonly database", "unable to open database file")))

_ADVICE = {
    DISK_FULL: "no space left on the device that holds the archive: free some and run the command "
               "again (what was written before is intact)",
    DAMAGED: "the catalog database is damaged: restore it from a backup, or salvage it with "
             "`sqlite3 catalog.db .recover | sqlite3 fixed.db` and put fixed.db in its place "
             "(the index and thumbnails are rebuilt from the catalog)",
    READ_ONLY: "the archive cannot be written: its home (or the catalog file in it) is read-only "
               "or missing; to only read it, pass --read-only (VIDSONAR_READ_ONLY=1), which an "
               "unwritable home gets on its own",
}


@dataclass(frozen=True)
class OperationalFailure:
    kind: str  # DISK_FULL | DAMAGED | READ_ONLY | UNWRITABLE
    message: str


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield orig
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException) -> OperationalFailure | None:
    """The operational failure behind ``exc`` (or one it was raised from), or None."""
    for e in _chain(exc):
        kind = None
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            kind = DISK_FULL
        elif isinstance(e, OSError) and _refused_write(e):
            return OperationalFailure(UNWRITABLE, _unwritable(e))
        elif isinstance(e, OSError) and e.errno == errno.EROFS:
            kind = READ_ONLY
        else:
            text = str(e).lower()
            kind = next((k for k, words in _SQLITE if any(w in text for w in words)), None)
        if kind is not None:
            return OperationalFailure(kind, f"{_ADVICE[kind]} ({type(e).__name__}: {e})")
    return None


def _refused_write(e: OSError) -> bool:
    """Denied by the folder's permissions, or by a read-only file system where the path is
    known (without one, EROFS is told as the archive's: READ_ONLY)."""
    return e.errno in (errno.EACCES, errno.EPERM) or (e.errno == errno.EROFS and bool(e.filename))


def _unwritable(e: OSError) -> str:
    """The folder that cannot be written and what to do; derived files of a read-only archive
    (browser previews, thumbnails made again) go to the cache, which the user may move."""
    name = e.filename2 if e.filename is None else e.filename
    name = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else None
    cache = ("what a read-only archive makes on demand (browser previews, thumbnails) goes to "
             "its cache, which VIDSONAR_CACHE can move to a folder this user can write")
    if e.errno == errno.EROFS:
        where = f"in {Path(name).parent} ({e.strerror}: {name})" if name else f"a file ({e.strerror})"
        return f"cannot write {where}: mount it read-write; {cache}"
    # a denied open may have been a read (a video file) or a write (a preview): name both
    where = f"{name} (in {Path(name).parent})" if name else f"a file ({e.strerror})"
    return (f"permission denied for {where}: fix the permissions so that the user running "
            f"vidsonar can read the archive's files and write in its folders; {cache}")
