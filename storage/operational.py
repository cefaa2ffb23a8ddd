"""Failures of the machine under the archive, told in one line: a full disk, a damaged or
read-only catalog. They are not bugs, so the user gets what happened and what to do, not a
traceback (the CLI's ``fail_cleanly``) and not a bare 500 (the server answers 507 or 503).

Every write of the archive is atomic (a catalog transaction, a temporary file renamed), so
after any of these nothing already written is lost: free space, or mend the file, and run the
command again.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

DISK_FULL, DAMAGED, READ_ONLY = "disk full", "damaged catalog", "read-only"

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
    kind: str  # DISK_FULL | DAMAGED | READ_ONLY
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
        elif isinstance(e, OSError) and e.errno == errno.EROFS:
            kind = READ_ONLY
        else:
            text = str(e).lower()
            kind = next((k for k, words in _SQLITE if any(w in text for w in words)), None)
        if kind is not None:
            return OperationalFailure(kind, f"{_ADVICE[kind]} ({type(e).__name__}: {e})")
    return None
