"""Opening a SQLite catalog without writing a byte: SQLite's read-only URI.

``mode=ro`` opens the file read-only, and SQLite then never writes it. But a catalog is in WAL
mode (storage.catalog), and a WAL database is read through its ``-wal`` file and its ``-shm``
index, which a reader creates when they are missing and cannot create on a read-only medium.
SQLite (3.22 and later) opens a read-only WAL database when both files exist, can be created,
or the database is ``immutable`` (https://www.sqlite.org/wal.html#readonly). So where the
folder cannot be written and the two are not both there, the file is opened ``immutable=1``:
SQLite takes no locks and trusts that nobody changes the file while it is open, which holds
for a snapshot, a DVD or a replica nobody writes. One case cannot be read that way: a
``-wal`` holding commits not yet copied into the file, with no ``-shm`` beside it; immutable
would skip those commits, so that is refused, saying what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from vidsonar.errors import CatalogError, NotFoundError


def read_only_url(url: sa.engine.URL) -> sa.engine.URL:
    """The SQLite URL ``url`` opened read-only: ``file:PATH?mode=ro`` (``&immutable=1`` where
    the folder cannot take the -wal and -shm files). A URL already in SQLite's URI form only
    gets ``mode=ro``; an in-memory database is returned as it is."""
    if url.query.get("uri") in ("true", "1"):
        return url.update_query_dict({"mode": "ro"})
    if not url.database or url.database == ":memory:":
        return url
    db = Path(url.database).absolute()
    if not db.is_file():
        raise NotFoundError(f"no catalog at {db}: a read-only archive must already hold one")
    query = {"mode": "ro", "uri": "true"}
    if needs_immutable(db):
        query["immutable"] = "1"
    # SQLite decodes %HH in a URI's path: a ?, # or % in a folder name stays part of it
    return url.set(database="file:" + quote(str(db), safe="/")).update_query_dict(query)


def needs_immutable(db: Path) -> bool:
    """True when SQLite could not read ``db`` as a WAL database without writing beside it."""
    wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
    if os.access(db.parent, os.W_OK) or (wal.exists() and shm.exists()):
        return False
    if wal.exists() and wal.stat().st_size > 0:
        raise CatalogError(
            f"the catalog {db} has commits in {wal.name} that need {shm.name} to be read, and its "
            f"folder cannot be written to make one: copy the home again with {shm.name}, or open "
            "a writable copy once (any vidsonar command) so SQLite moves them into the file")
    return True
